// workerd's command line: flags, policy and profile files, signals (first
// SIGTERM drains, a second stops running jobs and hands them back).
#pragma once

namespace assessq {
int WorkerdMain(int argc, char** argv);
}
