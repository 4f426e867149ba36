// The single place the nlpengine version is defined; pyproject.toml reads it.
#pragma once

#define NLE_VERSION_MAJOR 0
#define NLE_VERSION_MINOR 1
#define NLE_VERSION_PATCH 0
#define NLE_VERSION "0.1.0"
