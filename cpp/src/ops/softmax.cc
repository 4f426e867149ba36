#include "ops/softmax.h"

#include "ops/check.h"

namespace nle::ops {

void softmax(Tensor& y, const Tensor& x, const Tensor* mask, int64_t rows_per_mask_row) {
  check_cpu_f32("softmax", {&y, &x});
  if (y.shape() != x.shape()) throw InvalidInputError("softmax: input and output shapes differ");
  const int64_t cols = x.dim(-1);
  const int64_t rows = cols ? x.numel() / cols : 0;
  const uint8_t* m = nullptr;
  if (mask) {
    if (mask->dtype() != DType::U8 && mask->dtype() != DType::BOOL)
      throw InvalidInputError("softmax: mask must be U8 or BOOL");
    if (rows_per_mask_row < 1 || mask->dim(-1) != cols ||
        mask->numel() / cols * rows_per_mask_row != rows)
      throw InvalidInputError("softmax: mask " + shape_to_string(mask->shape()) +
                              " does not broadcast to " + shape_to_string(x.shape()));
    m = static_cast<const uint8_t*>(mask->raw_data());
  }
  cpu::softmax_f32(y.data<float>(), x.data<float>(), m, rows, cols, rows_per_mask_row);
}

}  // namespace nle::ops
