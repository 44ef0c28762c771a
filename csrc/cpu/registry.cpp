// Op library schema home: every llmsys:: op is declared here, implementations register per dispatch key
// in their own files (TORCH_LIBRARY_IMPL).
#include <torch/library.h>

namespace llmsys {
int64_t abi_version() { return 1; }
}  // namespace llmsys

TORCH_LIBRARY(llmsys, m) {
  m.def("abi_version() -> int", &llmsys::abi_version);
}
