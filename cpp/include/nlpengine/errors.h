// Exceptions thrown by the C++ runtime. Every message names the file, tensor,
// key or input it is about; the Python module maps them to nlpengine.ModelError
// and nlpengine.InvalidInputError, the C API to error strings.
#pragma once

#include <stdexcept>
#include <string>

#include "nlpengine/export.h"

namespace nle {

// Base of all runtime errors.
class NLE_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A model directory, weights file or config that cannot be used.
class NLE_API ModelError : public Error {
 public:
  using Error::Error;
};

// Arguments of a call (input ids, masks, shapes) that the model cannot run on.
class NLE_API InvalidInputError : public Error {
 public:
  using Error::Error;
};

}  // namespace nle
