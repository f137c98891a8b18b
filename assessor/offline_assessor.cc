// offline-assessor: the default profile's agent. Reads one Masader metadata
// file and writes an assessment (schemas/assessment.schema.json) made from the
// metadata alone, in Modern Standard Arabic; rules in rules.h and
// docs/offline-assessor.md.
//
//   /assessor --input PATH --output PATH [--dataset KEY]
//
// Exit status: 0 written; 2 usage error or bad input (the message on stderr
// names the field); 1 the output could not be written. Linked fully static
// (FROM scratch image): no network, no environment, no locale.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "assessor/rules.h"

namespace {

constexpr char kUsage[] = "usage: assessor --input PATH --output PATH [--dataset KEY]\n";

int Usage(const std::string& problem) {
  std::cerr << "assessor: " << problem << "\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string input, output, dataset;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    std::string* target = nullptr;
    std::string value;
    bool inline_value = false;
    for (auto [flag, dest] : {std::pair<const char*, std::string*>{"--input", &input},
                              {"--output", &output},
                              {"--dataset", &dataset}}) {
      const std::string f = flag;
      if (arg == f) {
        target = dest;
      } else if (arg.rfind(f + "=", 0) == 0) {
        target = dest;
        value = arg.substr(f.size() + 1);
        inline_value = true;
      }
    }
    if (target == nullptr) return Usage("unknown argument \"" + arg + "\"");
    if (!inline_value) {
      if (i + 1 >= argc) return Usage(arg + " needs a value");
      value = argv[++i];
    }
    *target = value;
  }
  if (input.empty()) return Usage("--input is required");
  if (output.empty()) return Usage("--output is required");
  const std::string who = dataset.empty() ? input : dataset + " (" + input + ")";

  std::ifstream in(input, std::ios::binary);
  if (!in) {
    std::cerr << "assessor: " << who << ": cannot read the input: " << std::strerror(errno)
              << "\n";
    return 2;
  }
  // Read at most one byte past the cap, so an oversized file is refused cheaply.
  std::string text;
  text.resize(assessq::offline::kMaxInputBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (in.bad()) {
    std::cerr << "assessor: " << who << ": cannot read the input\n";
    return 2;
  }

  std::string error;
  auto assessment = assessq::offline::AssessMetadataText(text, &error);
  if (!assessment) {
    std::cerr << "assessor: " << who << ": " << error << "\n";
    return 2;
  }
  const std::string body = assessment->dump(2, ' ', /*ensure_ascii=*/false) + "\n";

  std::ofstream out(output, std::ios::binary | std::ios::trunc);
  if (!out) {
    std::cerr << "assessor: cannot write " << output << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  out.write(body.data(), static_cast<std::streamsize>(body.size()));
  out.close();
  if (!out) {
    std::cerr << "assessor: cannot write " << output << "\n";
    return 1;
  }
  return 0;
}
