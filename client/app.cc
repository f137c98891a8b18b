// assessctl's command line: global flags, then one subcommand per verb (each
// in client/verbs/).
#include <iostream>

#include "client/cli_context.h"

namespace assessq::cli {

void RegisterReport(CLI::App&, Context&, int&);  // client/verbs/report.cc

int AssessctlMain(int argc, char** argv) {
  CLI::App app{"assessctl: submit, watch and steer assessq batches"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the verb
  Context ctx;
  int exit_code = kExitOk;
  app.add_option("--coordinator", ctx.coordinator,
                 "unix:PATH or HOST:PORT (default: $ASSESSQ_COORDINATOR or "
                 "unix:/tmp/assessq/coordinator.sock)");
  app.add_option("--token-file", ctx.token_file,
                 "operator token file (default: $ASSESSQ_TOKEN or $ASSESSQ_TOKEN_FILE)");
  app.add_option("--tls-ca", ctx.tls.ca_file, "verify the coordinator's TLS certificate with this CA");
  app.add_option("--tls-cert", ctx.tls.cert_file, "client certificate (PEM)");
  app.add_option("--tls-key", ctx.tls.key_file, "client key (PEM)");
  app.add_option("--tls-server-name", ctx.tls.server_name_override, "expected server name");
  app.add_option("--connect-timeout", ctx.connect_timeout_s,
                 "seconds to wait for the coordinator to answer (default 5)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("-o,--output", ctx.output, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  for (VerbRegistrar reg : {RegisterSubmit, RegisterStatus, RegisterList, RegisterShow,
                            RegisterResult, RegisterRetry, RegisterCancel, RegisterExport,
                            RegisterWorkers, RegisterPause, RegisterWait, RegisterLogs,
                            RegisterReport, RegisterLimits, RegisterHealth, RegisterBudget})
    reg(app, ctx, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  return exit_code;
}

}  // namespace assessq::cli
