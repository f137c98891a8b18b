// coordinatord's command line: serve (the default) and `token create|revoke`.
#pragma once

namespace assessq {
int CoordinatordMain(int argc, char** argv);
}
