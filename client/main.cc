// assessctl: the operator's command line. Thin entry point; see client/app.cc.
#include "client/cli_context.h"

int main(int argc, char** argv) { return assessq::cli::AssessctlMain(argc, argv); }
