// coordinatord: the queue and all assessment state. Thin entry point; see
// server/app.h for flags and subcommands.
#include "server/app.h"

int main(int argc, char** argv) { return assessq::CoordinatordMain(argc, argv); }
