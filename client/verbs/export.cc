// `assessctl export --batch B --format jsonl|csv [--out FILE]`: every stored
// assessment with its provenance. JSONL: one object per dataset. CSV:
// RFC 4180 quoting, a UTF-8 byte-order mark so spreadsheet programs read the
// Arabic text as UTF-8, one column per top-level assessment field (nested
// values as JSON); text cells that a spreadsheet would run as a formula are
// neutralised with a leading ' (client/csv.h). Either format printed to a
// terminal carries no control a terminal would act on (cli_context.h).
#include <unistd.h>

#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "client/cli_context.h"
#include "client/csv.h"

namespace assessq::cli {
namespace {

// A JSON value as a CSV cell: strings as text (neutralised), the rest as
// the JSON the export writes itself (numbers, booleans, nested values).
std::string CellOf(const nlohmann::json& v) {
  if (v.is_string()) return CsvCell(v.get<std::string>(), /*text=*/true);
  if (v.is_null()) return "";
  return CsvCell(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                 /*text=*/false);
}

}  // namespace

void RegisterExport(CLI::App& app, Context& ctx, int& exit_code) {
  auto* cmd = app.add_subcommand("export", "export a batch's assessments as JSONL or CSV");
  struct Opts {
    std::string batch, format = "jsonl", out;
    bool all = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--batch", o->batch, "the batch")->required();
  cmd->add_option("--format", o->format, "jsonl or csv")->check(CLI::IsMember({"jsonl", "csv"}));
  cmd->add_option("--out", o->out, "write here instead of stdout");
  cmd->add_flag("--all", o->all, "include jobs without a result");
  cmd->callback([&ctx, &exit_code, o] {
    if (!Connected(ctx, exit_code)) return;
    v1::ExportRequest req;
    req.set_batch(o->batch);
    req.set_include_unfinished(o->all);
    auto call = ctx.Call(600);
    auto reader = ctx.stub->Export(call.get(), req);
    std::vector<nlohmann::json> rows;
    v1::ExportRecord rec;
    while (reader->Read(&rec)) {
      nlohmann::json row = JobJson(rec.job());
      row["duration_s"] = rec.duration_ms() / 1000.0;
      row["flags"] = nlohmann::json::array();
      for (const auto& f : rec.flags()) row["flags"].push_back(f);
      // Provenance: image and container, hosts contacted, denied requests.
      auto details = nlohmann::json::parse(rec.details_json(), nullptr, false);
      row["provenance"] = details.is_discarded() ? nlohmann::json::object() : details;
      auto a = nlohmann::json::parse(rec.result_json(), nullptr, false);
      row["assessment"] = a.is_discarded() ? nlohmann::json(nullptr) : a;
      rows.push_back(std::move(row));
    }
    auto st = reader->Finish();
    if (!st.ok()) {
      exit_code = Fail(st);
      return;
    }
    std::ofstream file;
    if (!o->out.empty()) {
      file.open(o->out, std::ios::binary | std::ios::trunc);
      if (!file) {
        exit_code = Fail(absl::UnavailableError(absl::StrCat(o->out, ": cannot write")));
        return;
      }
    }
    std::ostream& out = o->out.empty() ? std::cout : file;
    // A CSV cell may hold any text; on a terminal it is printed escaped.
    const bool tty = o->out.empty() && isatty(STDOUT_FILENO);
    if (o->format == "jsonl") {
      for (const auto& r : rows) out << JsonLine(r) << "\n";
    } else {
      std::vector<std::string> fixed = {"job_id", "batch", "dataset_key", "dataset_name",
                                        "state", "attempts", "duration_s", "worker",
                                        "input_sha256", "flags", "provenance"};
      std::vector<std::string> fields;
      for (const auto& r : rows)
        if (r["assessment"].is_object())
          for (auto& [k, v] : r["assessment"].items())
            if (std::find(fields.begin(), fields.end(), k) == fields.end()) fields.push_back(k);
      out << "\xEF\xBB\xBF";
      std::string header;
      for (const auto& f : fixed) header += CsvCell(f, /*text=*/true) + ",";
      for (const auto& f : fields) header += CsvCell(f, /*text=*/true) + ",";
      header.pop_back();
      out << (tty ? SafeText(header) : header) << "\r\n";
      for (const auto& r : rows) {
        std::string line;
        for (const auto& f : fixed) line += CellOf(r[f]) + ",";
        for (const auto& f : fields) {
          const auto& a = r["assessment"];
          line += (a.is_object() && a.contains(f) ? CellOf(a[f]) : "") + ",";
        }
        line.pop_back();
        out << (tty ? SafeText(line) : line) << "\r\n";
      }
    }
    out.flush();
    if (!o->out.empty())
      std::cerr << "wrote " << rows.size() << " record(s) to " << Safe(o->out) << "\n";
    exit_code = kExitOk;
  });
}

}  // namespace assessq::cli
