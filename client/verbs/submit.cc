// `assessctl submit PATH... --batch NAME [--profile FILE] [--rerun]`: reads
// metadata files and folders, checks each locally (so errors name the file at
// once), and submits the good ones in chunks. Bad files are reported with the
// reason and do not stop the rest; the exit code says the submission was
// partial. Dataset keys come from file names and are never used as paths.
// Nothing outside the submitted folders is read: symbolic links that leave
// the folder (unless --follow-links), fifos, sockets and devices are bad
// files like the rest (client/input_files.h).
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>

#include "absl/strings/str_cat.h"
#include "client/cli_context.h"
#include "client/input_files.h"
#include "client/progress.h"
#include "server/intake.h"
#include "server/pricing.h"

namespace assessq::cli {
namespace fs = std::filesystem;

namespace {

struct Found {
  std::string path;  // as found, for messages
  std::string root;  // the submitted folder it was found in
};

struct Local {
  std::string path;  // as found, for messages
  std::string key;
  std::string content;
};

struct Rejection {
  std::string path;
  std::string error;
};

// Expands files and folders (folders: every *.json below that is not a
// folder, sorted; links to folders are not descended). Whether each may be
// read is ReadInputFile's decision, so links and fifos are reported.
void Collect(const std::string& arg, std::vector<Found>& out, std::vector<Rejection>& bad) {
  std::error_code ec;
  auto st = fs::status(arg, ec);
  if (ec || !fs::exists(st)) {
    // A dangling link or an unreadable entry: ReadInputFile names it.
    if (fs::is_symlink(fs::symlink_status(arg, ec))) {
      fs::path parent = fs::path(arg).parent_path();
      out.push_back({arg, parent.empty() ? "." : parent.string()});
      return;
    }
    bad.push_back({arg, "no such file or directory"});
    return;
  }
  if (fs::is_directory(st)) {
    std::vector<Found> found;
    for (auto it = fs::recursive_directory_iterator(
             arg, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      std::error_code e2;
      if (it->is_directory(e2) && !it->is_symlink(e2)) continue;
      if (it->path().extension() == ".json") found.push_back({it->path().string(), arg});
    }
    std::sort(found.begin(), found.end(),
              [](const Found& a, const Found& b) { return a.path < b.path; });
    out.insert(out.end(), found.begin(), found.end());
    return;
  }
  // A file named on the command line: its folder is the one it is in.
  fs::path parent = fs::path(arg).parent_path();
  out.push_back({arg, parent.empty() ? "." : parent.string()});
}

}  // namespace

void RegisterSubmit(CLI::App& app, Context& ctx, int& exit_code) {
  auto* cmd = app.add_subcommand("submit", "submit metadata files or folders to a batch");
  struct Opts {
    std::vector<std::string> paths;
    std::string batch, profile;
    bool rerun = false, follow_links = false;
    std::vector<std::string> max_attempts;
    std::optional<int> max_running;
    std::optional<double> start_rate;
    std::optional<double> budget;
    std::string prices;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("paths", o->paths, "metadata JSON files and folders")->required();
  cmd->add_option("--batch", o->batch, "batch name (created on first submit)")->required();
  cmd->add_option("--profile", o->profile, "job profile JSON file for the batch");
  cmd->add_flag("--rerun", o->rerun, "run again even datasets already succeeded or in flight");
  cmd->add_flag("--follow-links", o->follow_links,
                "read *.json symbolic links that point outside the submitted folder");
  cmd->add_option("--max-attempts", o->max_attempts,
                  "per-class attempt limit, CLASS=N (e.g. agent=5)");
  cmd->add_option("--max-running", o->max_running,
                  "fleet-wide: the batch's jobs running at once; 0 = no limit")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--start-rate", o->start_rate,
                  "fleet-wide: the batch's job starts per minute; 0 = no limit")
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--budget", o->budget,
                  "the batch's budget in USD: no new job starts once spent + running jobs' caps "
                  "would pass it; 0 = no budget")
      ->check(CLI::Range(0.0, 1e9));
  cmd->add_option("--prices", o->prices,
                  "price table JSON for this batch (the form of coordinatord --prices)");
  cmd->callback([&ctx, &exit_code, o] {
    std::vector<Found> files;
    std::vector<Rejection> rejected;
    for (const auto& p : o->paths) Collect(p, files, rejected);

    v1::SubmitRequest base;
    base.set_batch(o->batch);
    base.set_rerun(o->rerun);
    if (o->max_running) base.set_max_running(*o->max_running);
    if (o->start_rate) base.set_start_rate_per_min(*o->start_rate);
    if (o->budget) base.set_budget_usd(*o->budget);
    if (!o->prices.empty()) {
      auto text = ReadFileToString(o->prices, 1 << 20);
      if (!text.ok()) {
        exit_code = Fail(text.status());
        return;
      }
      if (auto t = PriceTable::Parse(*text, o->prices); !t.ok()) {
        exit_code = Fail(t.status());
        return;
      }
      base.set_prices_json(*text);
    }
    if (!o->profile.empty()) {
      auto p = ReadFileToString(o->profile, 1 << 20);
      if (!p.ok()) {
        exit_code = Fail(p.status());
        return;
      }
      auto j = nlohmann::json::parse(*p, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        exit_code = Fail(absl::InvalidArgumentError(
            absl::StrCat(o->profile, ": profile is not a JSON object")));
        return;
      }
      // "prompt_template": "@FILE" inlines FILE, relative to the profile.
      if (j.contains("prompt_template") && j["prompt_template"].is_string()) {
        std::string t = j["prompt_template"].get<std::string>();
        if (!t.empty() && t[0] == '@') {
          fs::path pf = fs::path(o->profile).parent_path() / t.substr(1);
          auto text = ReadFileToString(pf.string(), 1 << 20);
          if (!text.ok()) {
            exit_code = Fail(absl::InvalidArgumentError(absl::StrCat(
                o->profile, ": prompt_template: ", text.status().message())));
            return;
          }
          j["prompt_template"] = *text;
        }
      }
      if (auto cap = JobCapFromProfile(j.dump()); !cap.ok()) {
        exit_code = Fail(absl::InvalidArgumentError(
            absl::StrCat(o->profile, ": ", cap.status().message())));
        return;
      }
      base.set_profile_json(j.dump());
    }
    for (const auto& kv : o->max_attempts) {
      auto eq = kv.find('=');
      int n = 0;
      if (eq == std::string::npos || !absl::SimpleAtoi(kv.substr(eq + 1), &n)) {
        exit_code = Fail(absl::InvalidArgumentError(
            absl::StrCat("--max-attempts wants CLASS=N, not '", kv, "'")));
        return;
      }
      (*base.mutable_retry_policy()->mutable_max_attempts())[kv.substr(0, eq)] = n;
    }

    // Local checks first: every problem names its file.
    std::vector<Local> good;
    std::map<std::string, std::string> key_owner;
    for (const auto& found : files) {
      const std::string& f = found.path;
      auto key = DatasetKeyFromSourceName(f);
      if (!key.ok()) {
        rejected.push_back({f, std::string(key.status().message())});
        continue;
      }
      auto content = ReadInputFile(found.root, f, o->follow_links, kMaxMetadataBytes);
      if (!content.ok()) {
        rejected.push_back({f, std::string(content.status().message())});
        continue;
      }
      auto md = ParseMetadata(*content);
      if (!md.ok()) {
        rejected.push_back({f, std::string(md.status().message())});
        continue;
      }
      auto [it, fresh] = key_owner.emplace(*key, f);
      if (!fresh) {
        rejected.push_back({f, absl::StrCat("dataset key '", *key, "' is also given by ",
                                            it->second, "; keys must be unique per batch")});
        continue;
      }
      good.push_back({f, *key, std::move(*content)});
    }

    if (auto s = ctx.Connect(); !s.ok()) {
      exit_code = Fail(s);
      return;
    }
    std::map<v1::SubmitItem::Outcome, int> counts;
    nlohmann::json items = nlohmann::json::array();
    Progress bar("submit", static_cast<int64_t>(good.size()), !ctx.json());
    size_t i = 0;
    // With no good file, one empty request still creates the batch or
    // updates its profile, if one was given.
    bool send_empty =
        good.empty() && (!o->profile.empty() || o->budget || !o->prices.empty());
    while (i < good.size() || send_empty) {
      send_empty = false;
      v1::SubmitRequest req = base;
      size_t bytes = 0;
      std::vector<size_t> idx;
      while (i < good.size() && idx.size() < 500 && bytes < (8 << 20)) {
        auto* f = req.add_files();
        f->set_source_name(fs::path(good[i].path).filename().string());
        f->set_content(good[i].content);
        bytes += good[i].content.size();
        idx.push_back(i++);
      }
      v1::SubmitResponse resp;
      auto call = ctx.Call(120);
      grpc::Status st = ctx.stub->Submit(call.get(), req, &resp);
      if (!st.ok()) {
        bar.Done();
        exit_code = Fail(st);
        return;
      }
      for (int k = 0; k < resp.items_size(); ++k) {
        const auto& it = resp.items(k);
        const std::string& path = good[idx[k]].path;
        counts[it.outcome()]++;
        if (it.outcome() == v1::SubmitItem::OUTCOME_REJECTED) rejected.push_back({path, it.error()});
        items.push_back({{"file", path},
                         {"dataset_key", it.dataset_key()},
                         {"job_id", it.job_id()},
                         {"outcome", v1::SubmitItem::Outcome_Name(it.outcome()).substr(8)},
                         {"error", it.error()}});
      }
      bar.Add(static_cast<int64_t>(idx.size()));
    }
    bar.Done();
    for (const auto& r : rejected) {
      items.push_back({{"file", r.path}, {"outcome", "REJECTED"}, {"error", r.error}});
    }
    int created = counts[v1::SubmitItem::OUTCOME_CREATED] +
                  counts[v1::SubmitItem::OUTCOME_REPLACED] +
                  counts[v1::SubmitItem::OUTCOME_REQUEUED];
    if (ctx.json()) {
      PrintJson({{"batch", o->batch},
                 {"queued", created},
                 {"skipped_succeeded", counts[v1::SubmitItem::OUTCOME_SKIPPED_SUCCEEDED]},
                 {"skipped_in_flight", counts[v1::SubmitItem::OUTCOME_SKIPPED_IN_FLIGHT]},
                 {"rejected", rejected.size()},
                 {"items", items}});
    } else {
      for (const auto& r : rejected)
        std::cerr << "assessctl: " << Safe(r.path) << ": " << Safe(r.error) << "\n";
      std::cout << "batch " << Safe(o->batch) << ": " << created << " queued ("
                << counts[v1::SubmitItem::OUTCOME_REPLACED] << " replacing changed files, "
                << counts[v1::SubmitItem::OUTCOME_REQUEUED] << " requeued), "
                << counts[v1::SubmitItem::OUTCOME_SKIPPED_SUCCEEDED]
                << " skipped (already succeeded), "
                << counts[v1::SubmitItem::OUTCOME_SKIPPED_IN_FLIGHT]
                << " skipped (in flight), " << rejected.size() << " rejected\n";
    }
    exit_code = rejected.empty() ? kExitOk : (good.empty() ? kExitError : kExitPartial);
  });
}

}  // namespace assessq::cli
