// The CUDA driver API header as the hook sees it: every versioned and _ptsz name declared as is
// (cuda.h's own "__CUDA_API_VERSION_INTERNAL" view), so the table can name exact driver symbols.
#pragma once
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
