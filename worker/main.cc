// workerd: runs leased jobs in hardened containers. Thin entry point; see
// worker/app.cc.
#include "worker/app.h"

int main(int argc, char** argv) { return assessq::WorkerdMain(argc, argv); }
