// NLE_API marks the symbols a shared build of the runtime exports; everything
// else is hidden (-fvisibility=hidden).
#pragma once

#if defined(NLE_STATIC_DEFINE)
#  define NLE_API
#elif defined(_WIN32)
#  ifdef NLE_BUILDING_LIBRARY
#    define NLE_API __declspec(dllexport)
#  else
#    define NLE_API __declspec(dllimport)
#  endif
#else
#  define NLE_API __attribute__((visibility("default")))
#endif
