// assessctl against a real coordinatord over a unix socket: submitting the
// Masader catalogue and bad inputs, inspecting and exporting results a
// simulated worker produced, retry/cancel/pause/resume, draining workers,
// `-o json` on every verb, exit codes, and authentication (including an
// operator token on the worker service, through worker/api_client); hostile
// strings from agents, metadata and workers printed escaped (JSON exact, CSV
// formulas neutralised), and submitted folders never read outside.
#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <sys/stat.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "tests/integration/harness.h"
#include "worker/api_client.h"

namespace aqtest {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
namespace v1 = assessq::v1;

constexpr int kMasaderFiles = 1152;
const std::string kArabicFile = "بيانات_عربية.json";
const std::string kArabicKey = "بيانات_عربية";
const std::string kArabicName = "مدونة عربية للاختبار";

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    coord_ = std::make_unique<Coordinator>(dir_.path());
    op_ = coord_->CreateToken("operator", "ops");
    wk_ = coord_->CreateToken("worker", "workers");
    coord_->Start();
  }

  void TearDown() override {
    for (auto& w : workers_) w->Kill(SIGKILL);
    workers_.clear();
    if (coord_) {
      EXPECT_NO_THROW(coord_->Stop()) << "coordinatord must exit cleanly on SIGTERM";
      if (HasFailure()) std::cerr << "coordinatord log tail:\n" << Tail(coord_->log()) << "\n";
    }
  }

  RunResult Ctl(const std::vector<std::string>& args, int timeout_ms = 60000) {
    return Assessctl(*coord_, op_, args, timeout_ms);
  }

  // Runs a verb with `-o json`; throws unless it exits 0 with valid JSON.
  json CtlJson(std::vector<std::string> args) {
    args.push_back("-o");
    args.push_back("json");
    auto r = Ctl(args);
    if (r.exit_code != 0) throw std::runtime_error("assessctl failed: " + r.Describe());
    return JsonOut(r);
  }

  json Status(const std::string& batch) { return CtlJson({"status", "--batch", batch}); }

  int64_t Count(const std::string& batch, const std::string& state) {
    return Status(batch)["counts"][state].get<int64_t>();
  }

  // Polls `status --batch B -o json` until counts[state] == n.
  void WaitCount(const std::string& batch, const std::string& state, int64_t n,
                 int timeout_ms = 60000) {
    json last;
    bool ok = PollUntil(
        [&] {
          last = Status(batch);
          return last["counts"][state].get<int64_t>() == n;
        },
        timeout_ms, 100);
    if (!ok)
      throw std::runtime_error("batch " + batch + ": counts." + state + " never reached " +
                               std::to_string(n) + "; last status " + last.dump());
  }

  Child* StartSim(const std::string& name, int slots = 2, int work_ms = 10,
                  std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {BinPath("assessq-simworker"), "--coordinator",
                                     coord_->address(), "--token-file", wk_, "--name", name,
                                     "--slots", std::to_string(slots), "--work-ms",
                                     std::to_string(work_ms)};
    for (auto& a : extra) argv.push_back(a);
    workers_.push_back(Child::Spawn(argv, dir_.Join(name + ".log")));
    return workers_.back().get();
  }

  void StopSim(Child* c) {
    ASSERT_TRUE(c->Terminate(10000)) << "simworker did not stop cleanly:\n"
                                      << Tail(c->log_path());
  }

  // Writes files into dir_/sub and returns the folder.
  std::string Inputs(const std::string& sub,
                     const std::vector<std::pair<std::string, std::string>>& files) {
    std::string d = dir_.Join(sub);
    fs::create_directories(d);
    for (const auto& [name, content] : files) WriteFile(d + "/" + name, content);
    return d;
  }

  static std::string Meta(const std::string& name) { return json{{"Name", name}}.dump(); }

  json WorkerList() { return CtlJson({"workers"}); }

  bool WorkerConnected(const std::string& name) {
    for (const auto& w : WorkerList())
      if (w["name"] == name && w["connected"].get<bool>()) return true;
    return false;
  }

  TempDir dir_;
  std::unique_ptr<Coordinator> coord_;
  std::string op_, wk_;
  std::vector<std::unique_ptr<Child>> workers_;
};

// A rejected input: its path and the reason its error line gives.
struct Bad {
  std::string path, why;
};

// Every `bad` input is named on one line of `err` ("assessctl: PATH: reason").
void ExpectEachNamed(const std::string& err, const std::vector<Bad>& bad) {
  for (const auto& x : bad) {
    std::string line;
    std::istringstream in(err);
    bool found = false;
    while (std::getline(in, line))
      if (line.find(x.path + ":") != std::string::npos && line.find(x.why) != std::string::npos)
        found = true;
    EXPECT_TRUE(found) << "no error naming " << x.path << " (" << x.why << ") in:\n" << err;
  }
}

std::map<std::string, json> ItemsByKey(const json& submit) {
  std::map<std::string, json> m;
  for (const auto& it : submit["items"])
    if (it.contains("dataset_key")) m[it["dataset_key"].get<std::string>()] = it;
  return m;
}

// ------------------------------------------------------------------ submit

TEST_F(CliTest, SubmitsTheMasaderCatalogueAndSkipsReplacesAndReruns) {
  const std::string masader = MasaderDir();
  ASSERT_TRUE(fs::is_directory(masader)) << "the Masader catalogue is missing: " << masader;
  int files = 0;
  for (const auto& e : fs::directory_iterator(masader))
    if (e.path().extension() == ".json") ++files;
  ASSERT_EQ(files, kMasaderFiles) << "unexpected Masader catalogue size in " << masader;

  auto r = Ctl({"submit", masader, "--batch", "masader", "-o", "json"}, 120000);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  json sub = JsonOut(r);
  EXPECT_EQ(sub["queued"], kMasaderFiles);
  EXPECT_EQ(sub["rejected"], 0);
  EXPECT_EQ(sub["items"].size(), static_cast<size_t>(kMasaderFiles));
  std::set<int64_t> ids;
  for (const auto& it : sub["items"]) {
    EXPECT_EQ(it["outcome"], "CREATED") << it.dump();
    ids.insert(it["job_id"].get<int64_t>());
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kMasaderFiles)) << "job ids must be distinct";

  json st = Status("masader");
  EXPECT_EQ(st["counts"]["queued"], kMasaderFiles) << st.dump();
  EXPECT_EQ(st["total"], kMasaderFiles);
  EXPECT_EQ(st["name"], "masader");

  // The listing pages past the coordinator's 1000-per-call limit.
  json list = CtlJson({"list", "--batch", "masader"});
  ASSERT_EQ(list.size(), static_cast<size_t>(kMasaderFiles));
  std::set<std::string> keys;
  for (const auto& j : list) keys.insert(j["dataset_key"].get<std::string>());
  EXPECT_EQ(keys.size(), static_cast<size_t>(kMasaderFiles));
  EXPECT_TRUE(keys.count("ma’aks")) << "the non-ASCII key survives";

  // Nothing finished yet: a plain export is empty, --all lists every job.
  r = Ctl({"export", "--batch", "masader", "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "");
  r = Ctl({"export", "--batch", "masader", "--format", "jsonl", "--all"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), kMasaderFiles);

  // Resubmitting the same files: every one is already in flight.
  r = Ctl({"submit", masader, "--batch", "masader", "-o", "json"}, 120000);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  sub = JsonOut(r);
  EXPECT_EQ(sub["skipped_in_flight"], kMasaderFiles);
  EXPECT_EQ(sub["queued"], 0);
  for (const auto& it : sub["items"]) EXPECT_EQ(it["outcome"], "SKIPPED_IN_FLIGHT") << it.dump();
  // Human output says the same.
  r = Ctl({"submit", masader, "--batch", "masader"}, 120000);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("1152 skipped (in flight)"), std::string::npos) << r.out;

  // A few files copied elsewhere, one changed: that one replaces its job.
  std::string changed = dir_.Join("changed");
  fs::create_directories(changed);
  for (const char* f : {"adab.json", "ma’aks.json", "palm.json"})
    fs::copy_file(masader + "/" + f, changed + "/" + f);
  json adab = json::parse(ReadFile(changed + "/adab.json"));
  adab["Description"] = "changed by the integration test";
  WriteFile(changed + "/adab.json", adab.dump(2));
  int64_t old_adab = CtlJson({"show", "--batch", "masader", "adab"})["job_id"].get<int64_t>();

  sub = CtlJson({"submit", changed, "--batch", "masader"});
  auto items = ItemsByKey(sub);
  ASSERT_EQ(items.size(), 3u) << sub.dump();
  EXPECT_EQ(items["adab"]["outcome"], "REPLACED");
  EXPECT_NE(items["adab"]["job_id"].get<int64_t>(), old_adab);
  EXPECT_EQ(items["ma’aks"]["outcome"], "SKIPPED_IN_FLIGHT");
  EXPECT_EQ(items["palm"]["outcome"], "SKIPPED_IN_FLIGHT");
  EXPECT_EQ(sub["queued"], 1);
  // The dataset now names the new job; the old one was cancelled.
  json now = CtlJson({"show", "--batch", "masader", "adab"});
  EXPECT_EQ(now["job_id"], items["adab"]["job_id"]);
  json old = CtlJson({"show", std::to_string(old_adab)});
  EXPECT_EQ(old["state"], "cancelled") << old.dump();
  st = Status("masader");
  EXPECT_EQ(st["total"], kMasaderFiles);
  EXPECT_EQ(st["counts"]["queued"], kMasaderFiles);

  // --rerun replaces even unchanged in-flight jobs.
  sub = CtlJson({"submit", changed, "--batch", "masader", "--rerun"});
  auto rerun = ItemsByKey(sub);
  ASSERT_EQ(rerun.size(), 3u);
  for (auto& [k, it] : rerun) {
    EXPECT_EQ(it["outcome"], "REPLACED") << k;
    EXPECT_NE(it["job_id"], items[k]["job_id"]) << k;
  }
  st = Status("masader");
  EXPECT_EQ(st["total"], kMasaderFiles);
  EXPECT_EQ(st["counts"]["queued"], kMasaderFiles);
  EXPECT_EQ(st["counts"]["cancelled"], 0) << "superseded jobs are not counted";
}

TEST_F(CliTest, BadInputsAreNamedAndGoodOnesStillSubmittedWithExitCode3) {
  const std::string masader = MasaderDir();
  ASSERT_TRUE(fs::is_directory(masader)) << masader;
  std::string big = R"({"Name": "big", "pad": ")" + std::string(1100000, 'x') + "\"}";
  std::string a = Inputs("in/a", {{"good.json", Meta("good")},
                                  {"malformed.json", R"({"Name": "x", )"},
                                  {"noname.json", R"({"Title": "no name here"})"},
                                  {"array.json", R"([{"Name": "in an array"}])"},
                                  {"big.json", big},
                                  {"dup.json", Meta("first dup")},
                                  {"..json", Meta("dot dot")}});
  fs::copy_file(masader + "/ma’aks.json", a + "/ma’aks copy.json");
  std::string b = Inputs("in/b", {{"dup.json", Meta("second dup")}});
  WriteFile(dir_.Join("in/traversal.json"), Meta("reached through .."));
  const std::string via_dotdot = a + "/../traversal.json";
  const std::string missing = a + "/../../nowhere/../missing.json";

  auto r = Ctl({"submit", a, b, via_dotdot, missing, "--batch", "bad"});
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
  const std::vector<Bad> bad = {{a + "/malformed.json", "invalid JSON"},
                                {a + "/noname.json", "\"Name\" is missing"},
                                {a + "/array.json", "not a JSON object"},
                                {a + "/big.json", "larger than 1048576 bytes"},
                                {b + "/dup.json", "dataset key 'dup' is also given by"},
                                {a + "/..json", "empty dataset key"},
                                {missing, "no such file"}};
  ExpectEachNamed(r.err, bad);
  EXPECT_NE(r.out.find("4 queued"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("7 rejected"), std::string::npos) << r.out;

  // The good ones went in, keys from file names only.
  json st = Status("bad");
  EXPECT_EQ(st["total"], 4) << st.dump();
  json list = CtlJson({"list", "--batch", "bad"});
  std::set<std::string> keys;
  for (const auto& j : list) keys.insert(j["dataset_key"].get<std::string>());
  EXPECT_EQ(keys, (std::set<std::string>{"good", "ma’aks copy", "dup", "traversal"}));
  json maaks = CtlJson({"show", "--batch", "bad", "ma’aks copy"});
  EXPECT_EQ(maaks["source_name"], "ma’aks copy.json");
  EXPECT_EQ(maaks["dataset_name"], json::parse(ReadFile(masader + "/ma’aks.json"))["Name"]);
  json dup = CtlJson({"show", "--batch", "bad", "dup"});
  EXPECT_EQ(dup["dataset_name"], "first dup");

  // The same with -o json: each rejection is an item naming its file.
  r = Ctl({"submit", a, b, via_dotdot, missing, "--batch", "bad-json", "-o", "json"});
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
  json sub = JsonOut(r);
  EXPECT_EQ(sub["queued"], 4);
  EXPECT_EQ(sub["rejected"], 7);
  for (const auto& x : bad) {
    bool found = false;
    for (const auto& it : sub["items"])
      if (it["file"] == x.path && it["outcome"] == "REJECTED" &&
          it["error"].get<std::string>().find(x.why) != std::string::npos)
        found = true;
    EXPECT_TRUE(found) << x.path << " not rejected as " << x.why << " in " << sub.dump(1);
  }

  // Nothing good at all: an error, not a partial success.
  r = Ctl({"submit", a + "/malformed.json", a + "/noname.json", "--batch", "bad"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
}

// A folder someone handed over: links that leave it are refused, naming the
// file and where it points, unless --follow-links; a link inside it is
// read; a fifo is refused without being opened (it would block forever),
// named on the command line too; the rest still goes in, exit code 3.
TEST_F(CliTest, SubmitNeverReadsOutsideTheFolderItWasGiven) {
  std::string in = Inputs("handed/in", {{"good.json", Meta("good")}});
  fs::create_directories(in + "/sub");
  WriteFile(in + "/sub/inner.json", Meta("inner"));
  WriteFile(dir_.Join("handed/credentials.json"), Meta("the operator's own secret"));
  fs::create_symlink(dir_.Join("handed/credentials.json"), in + "/x.json");
  fs::create_symlink("../credentials.json", in + "/relative.json");
  fs::create_symlink("/etc/passwd", in + "/passwd.json");
  fs::create_symlink(in + "/sub/inner.json", in + "/inside.json");
  fs::create_symlink(dir_.Join("handed"), in + "/up");  // a folder link: not descended
  ASSERT_EQ(mkfifo((in + "/pipe.json").c_str(), 0600), 0);
  const std::string lone_pipe = dir_.Join("handed/lone-pipe.json");
  ASSERT_EQ(mkfifo(lone_pipe.c_str(), 0600), 0);

  auto r = Ctl({"submit", in, lone_pipe, "--batch", "handed"}, 20000);
  ASSERT_FALSE(r.timed_out) << "submit blocked (on a fifo?): " << r.Describe();
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
  const std::vector<Bad> bad = {
      {in + "/x.json", "symbolic link to " + fs::canonical(dir_.Join("handed/credentials.json")).string() +
                           ", outside the submitted folder"},
      {in + "/relative.json", "outside the submitted folder"},
      {in + "/passwd.json", "symbolic link to /etc/passwd, outside the submitted folder"},
      {in + "/pipe.json", "not a regular file (fifo)"},
      {lone_pipe, "not a regular file (fifo)"}};
  ExpectEachNamed(r.err, bad);
  EXPECT_NE(r.err.find("--follow-links"), std::string::npos) << r.err;
  std::set<std::string> keys;
  for (const auto& j : CtlJson({"list", "--batch", "handed"}))
    keys.insert(j["dataset_key"].get<std::string>());
  EXPECT_EQ(keys, (std::set<std::string>{"good", "inner", "inside"}))
      << "nothing from outside the folder was submitted";
  EXPECT_EQ(CtlJson({"show", "--batch", "handed", "inside"})["dataset_name"], "inner");

  // The operator says so: links outside are read; fifos still are not.
  r = Ctl({"submit", in, "--batch", "followed", "--follow-links"}, 20000);
  ASSERT_FALSE(r.timed_out) << r.Describe();
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
  EXPECT_NE(r.err.find(in + "/pipe.json: not a regular file (fifo)"), std::string::npos) << r.err;
  keys.clear();
  for (const auto& j : CtlJson({"list", "--batch", "followed"}))
    keys.insert(j["dataset_key"].get<std::string>());
  EXPECT_EQ(keys, (std::set<std::string>{"good", "inner", "inside", "x", "relative"}));
  EXPECT_NE(r.err.find(in + "/passwd.json: invalid JSON"), std::string::npos) << r.err;
}

// ------------------------------------------------------------------ inspect

// Minimal RFC 4180 reader: quoted cells, doubled quotes, CRLF rows.
std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string cell;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell += c;
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      row.push_back(cell);
      cell.clear();
      any = true;
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      row.push_back(cell);
      rows.push_back(row);
      row.clear();
      cell.clear();
      any = false;
      ++i;
    } else {
      cell += c;
      any = true;
    }
  }
  if (any || !cell.empty()) {
    row.push_back(cell);
    rows.push_back(row);
  }
  return rows;
}

TEST_F(CliTest, ListShowResultAndExportAfterASimWorkerCompletes) {
  const std::string masader = MasaderDir();
  ASSERT_TRUE(fs::is_directory(masader)) << masader;
  std::string in = Inputs("arabic", {{kArabicFile, json{{"Name", kArabicName},
                                                        {"Description", "نص عربي قصير"}}
                                                       .dump()},
                                     {"a, b.json", Meta("comma, in the key")}});
  fs::copy_file(masader + "/adab.json", in + "/adab.json");
  fs::copy_file(masader + "/ma’aks.json", in + "/ma’aks.json");
  json sub = CtlJson({"submit", in, "--batch", "arabic"});
  ASSERT_EQ(sub["queued"], 4) << sub.dump();

  StartSim("sim-1", 2, 10);
  WaitCount("arabic", "succeeded", 4);

  // list: JSON and table.
  json list = CtlJson({"list", "--batch", "arabic"});
  ASSERT_EQ(list.size(), 4u);
  std::map<std::string, json> by_key;
  for (const auto& j : list) {
    by_key[j["dataset_key"].get<std::string>()] = j;
    EXPECT_EQ(j["state"], "succeeded");
    EXPECT_EQ(j["worker"], "sim-1");
    EXPECT_EQ(j["attempts"], 1);
  }
  ASSERT_TRUE(by_key.count(kArabicKey));
  EXPECT_EQ(by_key[kArabicKey]["dataset_name"], kArabicName);
  auto r = Ctl({"list", "--batch", "arabic"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find(kArabicKey), std::string::npos) << r.out;
  EXPECT_EQ(CtlJson({"list", "--state", "succeeded"}).size(), 4u);
  EXPECT_EQ(CtlJson({"list", "--state", "queued"}).size(), 0u);
  r = Ctl({"list", "--state", "bogus"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("unknown state 'bogus'"), std::string::npos) << r.err;

  // show: by key (Arabic) and by id.
  json show = CtlJson({"show", "--batch", "arabic", kArabicKey});
  const int64_t job = show["job_id"].get<int64_t>();
  EXPECT_EQ(show["dataset_name"], kArabicName);
  EXPECT_EQ(show["source_name"], kArabicFile);
  ASSERT_EQ(show["attempts"].size(), 1u) << show.dump();
  EXPECT_EQ(show["attempts"][0]["outcome"], "succeeded");
  EXPECT_EQ(show["attempts"][0]["worker"], "sim-1");
  int succeeded_events = 0;
  for (const auto& e : show["events"]) succeeded_events += e["kind"] == "succeeded";
  EXPECT_EQ(succeeded_events, 1) << show.dump();
  r = Ctl({"show", std::to_string(job)});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("state succeeded"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(kArabicName), std::string::npos) << r.out;
  r = Ctl({"show", "not-a-number"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();

  // result: the simulated assessment, by key and by id.
  r = Ctl({"result", "--batch", "arabic", kArabicKey});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  json res = JsonOut(r);
  EXPECT_EQ(res["الاسم_الأصلي"], kArabicName) << res.dump();
  EXPECT_EQ(res["تقدير_الجودة"], "جيد") << res.dump();
  EXPECT_EQ(JsonOut(Ctl({"result", std::to_string(job)})), res);
  r = Ctl({"result", "--batch", "arabic", "no-such-dataset"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("no dataset 'no-such-dataset'"), std::string::npos) << r.err;

  // export JSONL: one valid object per line, each with its assessment.
  r = Ctl({"export", "--batch", "arabic", "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::istringstream lines(r.out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    json j = json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    EXPECT_EQ(j["assessment"]["الاسم_الأصلي"], j["dataset_name"]) << line;
    EXPECT_EQ(j["state"], "succeeded");
    if (j["dataset_key"] == kArabicKey) EXPECT_EQ(j["dataset_name"], kArabicName);
    ++n;
  }
  EXPECT_EQ(n, 4);

  // export CSV to a file: UTF-8 BOM, and it parses back with Arabic intact.
  std::string csv_path = dir_.Join("out.csv");
  r = Ctl({"export", "--batch", "arabic", "--format", "csv", "--out", csv_path});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::string csv = ReadFile(csv_path);
  ASSERT_GE(csv.size(), 3u);
  EXPECT_EQ(csv.substr(0, 3), "\xEF\xBB\xBF") << "CSV must start with a UTF-8 BOM";
  auto rows = ParseCsv(csv.substr(3));
  ASSERT_EQ(rows.size(), 5u) << csv;
  const auto& header = rows[0];
  auto col = [&](const std::string& name) {
    auto it = std::find(header.begin(), header.end(), name);
    EXPECT_NE(it, header.end()) << "no column " << name;
    return static_cast<size_t>(it - header.begin());
  };
  const size_t c_key = col("dataset_key"), c_name = col("dataset_name"),
               c_orig = col("الاسم_الأصلي"), c_score = col("درجة_الجودة"),
               c_check = col("فحص_البيانات"), c_state = col("state"), c_job = col("job_id");
  std::set<std::string> csv_keys;
  for (size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), header.size()) << "row " << i << " of\n" << csv;
    csv_keys.insert(rows[i][c_key]);
    EXPECT_EQ(rows[i][c_orig], rows[i][c_name]);
    EXPECT_EQ(rows[i][c_score], "70");
    // Nested values are cells of JSON.
    json check = json::parse(rows[i][c_check], nullptr, false);
    ASSERT_TRUE(check.is_object()) << rows[i][c_check];
    EXPECT_EQ(check["الطريقة_المستخدمة"], "metadata_only");
    EXPECT_EQ(rows[i][c_state], "succeeded");
    if (rows[i][c_key] == kArabicKey) {
      EXPECT_EQ(rows[i][c_name], kArabicName);
      EXPECT_EQ(rows[i][c_job], std::to_string(job));
    }
  }
  EXPECT_EQ(csv_keys, (std::set<std::string>{kArabicKey, "a, b", "adab", "ma’aks"}));
  // To stdout as well.
  r = Ctl({"export", "--batch", "arabic", "--format", "csv"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out.substr(0, 3), "\xEF\xBB\xBF");
  EXPECT_EQ(ParseCsv(r.out.substr(3)), rows);
  r = Ctl({"export", "--batch", "no-such-batch"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
}

// What agents, metadata files and workers write reaches the operator's
// terminal escaped: a dataset name, a worker name, a log tail (stored and
// streamed), a failure reason and the network log carry ESC sequences
// (title change, clear screen, OSC 52 clipboard write), C1 CSI, DEL and
// bidi overrides; no text output of list, show, logs, logs -f, netlog,
// workers, status or result holds one raw byte of them, each is visibly
// escaped, `-o json` carries every value exactly, and the CSV export
// neutralises the `=HYPERLINK(...)` name.
TEST_F(CliTest, HostileStringsAreEscapedOnTheTerminalAndExactInJson) {
  const std::string kTitle = "\x1b]0;owned\x07", kClear = "\x1b[2J\x1b[H",
                    kClip = "\x1b]52;c;cm0gLXJmIH4K\x07", kCsi = "\xc2\x9b" "31m",
                    kRlo = "\xe2\x80\xae", kIsolate = "\xe2\x81\xa6", kDel = "\x7f";
  const std::string name = "=HYPERLINK(\"http://evil.example/\",\"click\")" + kTitle + kRlo +
                           "fdp.exe" + kCsi + kDel;
  const std::string worker = "w" + kClip + kIsolate;
  const std::string log = "starting\n" + kClip + kTitle + kClear + "\n" + kRlo + "gnp.exe\n" +
                          kCsi + "red" + kDel + "\n";
  const std::string reason = "agent said " + kClear + kTitle + kRlo + "\nsecond line";
  std::string in = Inputs("hostile", {{"evil.json", Meta(name)}, {"failing.json", Meta("plain")}});
  json sub = CtlJson({"submit", in, "--batch", "hostile"});
  ASSERT_EQ(sub["queued"], 2) << sub.dump();

  // A worker that reports all of it.
  auto client = assessq::ApiClient::Create({coord_->address(), ReadToken(wk_), {}, worker, 2});
  ASSERT_TRUE(client.ok()) << client.status();
  std::mutex mu;
  std::vector<v1::Lease> leases;
  (*client)->Start([&](const v1::CoordinatorMessage& m) {
    std::lock_guard<std::mutex> l(mu);
    if (m.has_lease()) leases.push_back(m.lease());
  });
  ASSERT_TRUE(PollUntil([&] {
    std::lock_guard<std::mutex> l(mu);
    return leases.size() == 2;
  }, 30000));
  const json netlog = json::array({{{"ts", NowMs()}, {"method", "GET"},
                                    {"host", "h" + kClear + ".example"}, {"port", 443},
                                    {"decision", "denied"}, {"reason", "no rule " + kRlo}}});
  int64_t evil_job = 0, failing_job = 0;
  for (const auto& l : leases) {
    v1::CompleteRequest c;
    c.set_job_id(l.job_id());
    c.set_token(l.token());
    c.set_log_tail(log);
    c.set_netlog_json(netlog.dump());
    if (l.dataset_key() == "evil") {
      evil_job = l.job_id();
      v1::LogAppendRequest a;
      a.set_job_id(l.job_id());
      a.set_token(l.token());
      a.set_offset(0);
      a.set_data(log);
      ASSERT_TRUE((*client)->AppendLog(a).ok());
      c.set_result_json(ValidAssessment(name));
      // The agent's own account of its tool calls (worker/agent_steps.h).
      const json steps = {
          {"reported_by", "agent"}, {"format", "claude-stream-json"}, {"complete", true},
          {"steps", json::array({{{"tool", "WebFetch"},
                                  {"target", "https://aclanthology.org/P17" + kTitle},
                                  {"ok", true}, {"duration_ms", 1200}},
                                 {{"tool", "Bash" + kRlo}, {"target", "curl hf.co"}, {"ok", false}}})}};
      c.set_details_json(json({{"agent_steps", steps}}).dump());
    } else {
      failing_job = l.job_id();
      c.mutable_failure()->set_failure_class(v1::FAILURE_CLASS_INPUT);
      c.mutable_failure()->set_reason(reason);
    }
    auto done = (*client)->Complete(c);
    ASSERT_TRUE(done.ok()) << done.status();
  }
  (*client)->Stop();
  ASSERT_GT(evil_job, 0);
  ASSERT_GT(failing_job, 0);
  const std::string evil = std::to_string(evil_job), failing = std::to_string(failing_job);

  auto expect_inert = [&](const RunResult& r, const std::string& what) {
    EXPECT_EQ(r.exit_code, 0) << what << ": " << r.Describe();
    for (const std::string* stream : {&r.out, &r.err}) {
      for (char c : {'\x1b', '\x07', '\x7f'})
        EXPECT_EQ(stream->find(c), std::string::npos)
            << what << ": raw byte " << static_cast<int>(c) << " in:\n" << *stream;
      for (const std::string& raw : {std::string("\xc2\x9b"), kRlo, kIsolate})
        EXPECT_EQ(stream->find(raw), std::string::npos) << what << ": raw " << json(raw).dump();
      EXPECT_EQ(stream->find('\r'), std::string::npos) << what;
    }
  };
  auto expect_has = [&](const RunResult& r, const std::string& text, const std::string& what) {
    EXPECT_NE(r.out.find(text), std::string::npos) << what << ": no " << text << " in:\n" << r.out;
  };
  const std::string name_escaped =
      "=HYPERLINK(\"http://evil.example/\",\"click\")\\x1b]0;owned\\x07\\u202efdp.exe"
      "\\u009b31m\\x7f";
  const std::string worker_escaped = "w\\x1b]52;c;cm0gLXJmIH4K\\x07\\u2066";

  auto r = Ctl({"list", "--batch", "hostile"});
  expect_inert(r, "list");
  expect_has(r, worker_escaped, "list");
  r = Ctl({"show", evil, "--logs"});
  expect_inert(r, "show");
  expect_has(r, name_escaped, "show");
  expect_has(r, worker_escaped, "show");
  expect_has(r, "\\x1b]52;c;cm0gLXJmIH4K\\x07\\x1b]0;owned\\x07\\x1b[2J\\x1b[H\n", "show --logs");
  r = Ctl({"show", evil, "--steps"});
  expect_inert(r, "show --steps");
  expect_has(r, "attempt 1 steps (reported by the agent):", "show --steps");
  expect_has(r, "https://aclanthology.org/P17\\x1b]0;owned\\x07", "show --steps");
  expect_has(r, "1.2s", "show --steps");
  expect_has(r, "Bash\\u202e", "show --steps");
  expect_has(r, "error", "show --steps");
  r = Ctl({"show", failing, "--steps"});
  expect_has(r, "attempt 1 steps: none reported", "show --steps without a record");
  r = Ctl({"show", failing});
  expect_inert(r, "show failing");
  expect_has(r, "agent said \\x1b[2J\\x1b[H\\x1b]0;owned\\x07\\u202e \u2026", "show error cell");
  r = Ctl({"logs", evil});
  expect_inert(r, "logs");
  expect_has(r, "starting\n\\x1b]52;c;cm0gLXJmIH4K\\x07", "logs");
  expect_has(r, "\\u202egnp.exe\n\\u009b31mred\\x7f\n", "logs");
  r = Ctl({"logs", "-f", evil}, 30000);
  expect_inert(r, "logs -f");
  expect_has(r, "starting\n\\x1b]52;c;cm0gLXJmIH4K\\x07", "logs -f");
  r = Ctl({"netlog", evil});
  expect_inert(r, "netlog");
  expect_has(r, "h\\x1b[2J\\x1b[H.example", "netlog");
  expect_has(r, "no rule \\u202e", "netlog");
  r = Ctl({"workers"});
  expect_inert(r, "workers");
  expect_has(r, worker_escaped, "workers");
  expect_inert(Ctl({"status"}), "status");
  expect_inert(Ctl({"status", "--batch", "hostile"}), "status --batch");
  r = Ctl({"result", evil});
  expect_inert(r, "result");
  EXPECT_EQ(JsonOut(r), json::parse(ValidAssessment(name))) << "result: the exact values";
  r = Ctl({"export", "--batch", "hostile", "--format", "jsonl", "--all"});
  expect_inert(r, "export jsonl");

  // -o json: every value exact.
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"list", "--batch", "hostile"}, {"show", evil}, {"show", failing}, {"logs", evil},
           {"netlog", evil}, {"workers"}, {"logs", "-f", evil}}) {
    auto a = args;
    a.insert(a.end(), {"-o", "json"});
    expect_inert(Ctl(a, 30000), "-o json " + args[0]);
  }
  json show = CtlJson({"show", evil});
  EXPECT_EQ(show["dataset_name"], name);
  EXPECT_EQ(show["worker"], worker);
  EXPECT_EQ(show["attempts"][0]["log_tail"], log);
  EXPECT_EQ(CtlJson({"show", failing})["attempts"][0]["error"].get<std::string>().find(reason), 0u);
  EXPECT_EQ(CtlJson({"logs", evil})["log_tail"], log);
  EXPECT_EQ(CtlJson({"netlog", evil}), netlog);
  EXPECT_EQ(CtlJson({"workers"})[0]["name"], worker);
  EXPECT_EQ(CtlJson({"list", "--batch", "hostile"})[0]["worker"], worker);
  r = Ctl({"logs", "-f", evil, "-o", "json"}, 30000);
  std::string streamed;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) streamed += json::parse(line)["data"];
  EXPECT_EQ(streamed, log);

  // CSV: the =HYPERLINK name is text, neutralised; JSONL exact.
  std::string csv_path = dir_.Join("hostile.csv");
  r = Ctl({"export", "--batch", "hostile", "--format", "csv", "--out", csv_path});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  auto rows = ParseCsv(ReadFile(csv_path).substr(3));
  ASSERT_EQ(rows.size(), 2u);
  auto col = [&](const std::string& c) {
    auto it = std::find(rows[0].begin(), rows[0].end(), c);
    EXPECT_NE(it, rows[0].end()) << c;
    return static_cast<size_t>(it - rows[0].begin());
  };
  EXPECT_EQ(rows[1][col("dataset_name")], "'" + name);
  EXPECT_EQ(rows[1][col("الاسم")], "'" + name);
  EXPECT_EQ(rows[1][col("الاسم_الأصلي")], "'" + name);
  EXPECT_EQ(rows[1][col("درجة_الجودة")], "70");
  for (const auto& row : rows)
    for (const auto& cell : row)
      EXPECT_FALSE(!cell.empty() && std::string("=+-@\t\r").find(cell[0]) != std::string::npos)
          << "cell starts like a formula: " << json(cell).dump();
  r = Ctl({"export", "--batch", "hostile", "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  json line = json::parse(r.out.substr(0, r.out.find('\n')));
  EXPECT_EQ(line["dataset_name"], name);
  EXPECT_EQ(line["assessment"]["الاسم"], name);
}

// ------------------------------------------------------------------ steering

TEST_F(CliTest, RetryCancelPauseAndResume) {
  std::string flaky = Inputs("flaky", {{"f1.json", Meta("f1")}, {"f2.json", Meta("f2")},
                                       {"f3.json", Meta("f3")}});
  json sub = CtlJson({"submit", flaky, "--batch", "flaky", "--max-attempts", "agent=1"});
  ASSERT_EQ(sub["queued"], 3);

  // A worker whose every attempt fails as `agent`: one attempt, then attention.
  Child* failing = StartSim("failing", 2, 5, {"--fail-rate", "1.0"});
  WaitCount("flaky", "needs_attention", 3);
  StopSim(failing);
  json na = CtlJson({"list", "--batch", "flaky", "--state", "needs_attention", "--class", "agent"});
  ASSERT_EQ(na.size(), 3u);
  for (const auto& j : na) {
    EXPECT_EQ(j["last_failure_class"], "agent");
    EXPECT_EQ(j["attempts"], 1);
  }
  json f1 = CtlJson({"show", "--batch", "flaky", "f1"});
  ASSERT_EQ(f1["attempts"].size(), 1u);
  EXPECT_EQ(f1["attempts"][0]["outcome"], "failed");
  EXPECT_EQ(f1["attempts"][0]["failure_class"], "agent");
  EXPECT_EQ(f1["attempts"][0]["error"], "simulated agent failure");
  EXPECT_EQ(Status("flaky")["failed_attempts_by_class"]["agent"], 3);
  // `wait` on a finished batch with failures: exit 1, counts in JSON.
  auto w = Ctl({"wait", "--batch", "flaky", "--timeout", "30", "-o", "json"});
  EXPECT_EQ(w.exit_code, 1) << w.Describe();
  EXPECT_EQ(JsonOut(w)["failed"], 3);

  // retry: by class (none of that class), one job, then the rest of the batch.
  EXPECT_EQ(CtlJson({"retry", "--batch", "flaky", "--class", "model_api"})["requeued"], 0);
  EXPECT_EQ(CtlJson({"retry", f1["job_id"].dump()})["requeued"], 1);
  EXPECT_EQ(Count("flaky", "queued"), 1);
  EXPECT_EQ(CtlJson({"retry", "--batch", "flaky", "--class", "agent"})["requeued"], 2);
  EXPECT_EQ(Count("flaky", "queued"), 3);
  auto r = Ctl({"retry", f1["job_id"].dump()});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("only needs_attention or cancelled"), std::string::npos) << r.err;
  r = Ctl({"retry"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();

  // pause: a paused batch's jobs are not leased while others run.
  std::string held = Inputs("held", {{"h1.json", Meta("h1")}, {"h2.json", Meta("h2")},
                                     {"h3.json", Meta("h3")}});
  ASSERT_EQ(CtlJson({"submit", held, "--batch", "held"})["queued"], 3);
  json p = CtlJson({"pause", "--batch", "held"});
  EXPECT_EQ(p["paused"], true);
  EXPECT_EQ(Status("held")["paused"], true);
  // A pause survives a coordinator crash.
  coord_->Restart();
  EXPECT_EQ(Status("held")["paused"], true);
  std::string open = Inputs("open", {{"o1.json", Meta("o1")}, {"o2.json", Meta("o2")}});
  ASSERT_EQ(CtlJson({"submit", open, "--batch", "open"})["queued"], 2);
  StartSim("good", 2, 5);
  // The retried jobs and the later batch finish; the paused batch, submitted
  // before the later one, was passed over.
  WaitCount("flaky", "succeeded", 3);
  WaitCount("open", "succeeded", 2);
  json held_jobs = CtlJson({"list", "--batch", "held"});
  ASSERT_EQ(held_jobs.size(), 3u);
  for (const auto& j : held_jobs) {
    EXPECT_EQ(j["state"], "queued") << j.dump();
    EXPECT_EQ(j["attempts"], 0) << j.dump();
  }
  json f1_after = CtlJson({"show", "--batch", "flaky", "f1"});
  ASSERT_EQ(f1_after["attempts"].size(), 2u) << "earlier attempts stay in the history";
  EXPECT_EQ(f1_after["attempts"][1]["outcome"], "succeeded");
  // `wait` gives up on a paused batch after its timeout.
  auto hw = Ctl({"wait", "--batch", "held", "--timeout", "1"});
  EXPECT_EQ(hw.exit_code, 1) << hw.Describe();
  EXPECT_NE(hw.err.find("not finished after 1 s"), std::string::npos) << hw.err;
  json resumed = CtlJson({"resume", "--batch", "held"});
  EXPECT_EQ(resumed["paused"], false);
  WaitCount("held", "succeeded", 3);
  EXPECT_EQ(Status("held")["paused"], false);
  w = Ctl({"wait", "--batch", "held", "--timeout", "30"});
  EXPECT_EQ(w.exit_code, 0) << w.Describe();
  EXPECT_NE(w.out.find("held: 3 succeeded"), std::string::npos) << w.out;
  r = Ctl({"pause", "--batch", "no-such-batch"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();

  // cancel: with no worker connected, a whole batch; then retry one job.
  StopSim(workers_.back().get());
  std::string doomed = Inputs("doomed", {{"d1.json", Meta("d1")}, {"d2.json", Meta("d2")},
                                         {"d3.json", Meta("d3")}});
  ASSERT_EQ(CtlJson({"submit", doomed, "--batch", "doomed"})["queued"], 3);
  EXPECT_EQ(CtlJson({"cancel", "--batch", "doomed"})["cancelled"], 3);
  EXPECT_EQ(Count("doomed", "cancelled"), 3);
  json cjobs = CtlJson({"list", "--batch", "doomed", "--state", "cancelled"});
  ASSERT_EQ(cjobs.size(), 3u);
  const std::string cid = cjobs[0]["job_id"].dump();
  r = Ctl({"cancel", cid});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("already cancelled"), std::string::npos) << r.err;
  r = Ctl({"cancel"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_EQ(CtlJson({"retry", cid})["requeued"], 1);
  StartSim("good2", 2, 5);
  WaitCount("doomed", "succeeded", 1);
  EXPECT_EQ(Count("doomed", "cancelled"), 2);
  // Resubmitting the same files: cancelled ones run again, the done one skips.
  sub = CtlJson({"submit", doomed, "--batch", "doomed"});
  int requeued = 0, skipped = 0;
  for (const auto& it : sub["items"]) {
    requeued += it["outcome"] == "REQUEUED";
    skipped += it["outcome"] == "SKIPPED_SUCCEEDED";
  }
  EXPECT_EQ(requeued, 2) << sub.dump();
  EXPECT_EQ(skipped, 1) << sub.dump();
  WaitCount("doomed", "succeeded", 3);

  // cancel a running job: its attempt is cancelled and no result is stored.
  StopSim(workers_.back().get());
  std::string slow = Inputs("slow", {{"s1.json", Meta("s1")}});
  CtlJson({"submit", slow, "--batch", "slow"});
  Child* slow_worker = StartSim("slow", 1, 600000);
  json s1;
  ASSERT_TRUE(PollUntil(
      [&] {
        s1 = CtlJson({"show", "--batch", "slow", "s1"});
        return s1["state"] == "running";
      },
      30000, 50))
      << s1.dump();
  EXPECT_EQ(CtlJson({"cancel", s1["job_id"].dump()})["cancelled"], 1);
  s1 = CtlJson({"show", "--batch", "slow", "s1"});
  EXPECT_EQ(s1["state"], "cancelled");
  ASSERT_EQ(s1["attempts"].size(), 1u);
  EXPECT_EQ(s1["attempts"][0]["outcome"], "cancelled");
  r = Ctl({"result", s1["job_id"].dump()});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("no stored result"), std::string::npos) << r.err;
  slow_worker->Kill(SIGKILL);  // it sleeps through its "work"
}

TEST_F(CliTest, WorkersDrainAndUndrain) {
  StartSim("w1", 2, 5);
  ASSERT_TRUE(PollUntil([&] { return WorkerConnected("w1"); }, 30000, 50));
  json d = CtlJson({"workers", "drain", "w1"});
  EXPECT_EQ(d["worker"], "w1");
  EXPECT_EQ(d["draining"], true);
  json ws = WorkerList();
  ASSERT_EQ(ws.size(), 1u) << ws.dump();
  EXPECT_EQ(ws[0]["draining"], true);
  EXPECT_EQ(ws[0]["slots"], 2);
  // Draining survives a coordinator crash; w1 reconnects still drained.
  coord_->Restart();
  ASSERT_TRUE(PollUntil([&] { return WorkerConnected("w1"); }, 30000, 50));
  ws = WorkerList();
  ASSERT_EQ(ws.size(), 1u) << ws.dump();
  EXPECT_EQ(ws[0]["draining"], true) << ws.dump();

  // While w1 drains, only w2 takes the work.
  std::string in = Inputs("d", {{"a.json", Meta("a")}, {"b.json", Meta("b")},
                                {"c.json", Meta("c")}, {"e.json", Meta("e")}});
  CtlJson({"submit", in, "--batch", "d"});
  StartSim("w2", 2, 5);
  WaitCount("d", "succeeded", 4);
  for (const auto& j : CtlJson({"list", "--batch", "d"})) EXPECT_EQ(j["worker"], "w2") << j.dump();

  // Undrain w1, drain w2: the next batch goes to w1.
  EXPECT_EQ(CtlJson({"workers", "undrain", "w1"})["draining"], false);
  EXPECT_EQ(CtlJson({"workers", "drain", "w2"})["draining"], true);
  std::string in2 = Inputs("e", {{"x.json", Meta("x")}, {"y.json", Meta("y")},
                                 {"z.json", Meta("z")}});
  CtlJson({"submit", in2, "--batch", "e"});
  WaitCount("e", "succeeded", 3);
  for (const auto& j : CtlJson({"list", "--batch", "e"})) EXPECT_EQ(j["worker"], "w1") << j.dump();

  ws = WorkerList();
  std::map<std::string, json> by_name;
  for (const auto& w : ws) by_name[w["name"].get<std::string>()] = w;
  ASSERT_EQ(by_name.size(), 2u);
  EXPECT_EQ(by_name["w1"]["draining"], false);
  EXPECT_EQ(by_name["w2"]["draining"], true);
  EXPECT_EQ(by_name["w1"]["connected"], true);
  auto r = Ctl({"workers"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("WORKER"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("w2"), std::string::npos) << r.out;
  r = Ctl({"workers", "drain", "nobody"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("no worker 'nobody'"), std::string::npos) << r.err;
  r = Ctl({"workers", "drain"});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
}

TEST_F(CliTest, EveryVerbPrintsValidJsonWithDashOJson) {
  std::string in = Inputs("j", {{"one.json", Meta("one")}, {"two.json", Meta("two")}});
  StartSim("js", 1, 5);
  ASSERT_TRUE(PollUntil([&] { return WorkerConnected("js"); }, 30000, 50));
  // -o before and after the verb.
  auto r = Assessctl(*coord_, op_, {"-o", "json", "submit", in, "--batch", "j"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_TRUE(JsonOut(r).is_object());
  WaitCount("j", "succeeded", 2);
  const std::string job = CtlJson({"show", "--batch", "j", "one"})["job_id"].dump();

  const std::vector<std::vector<std::string>> verbs = {
      {"submit", in, "--batch", "j"},
      {"status"},
      {"status", "--batch", "j"},
      {"list"},
      {"list", "--batch", "j", "--state", "succeeded"},
      {"show", job},
      {"show", "--batch", "j", "two"},
      {"result", job},
      {"logs", job},
      {"netlog", "--batch", "j", "two"},
      {"workers"},
      {"workers", "drain", "js"},
      {"workers", "undrain", "js"},
      {"pause", "--batch", "j"},
      {"resume", "--batch", "j"},
      {"retry", "--batch", "j"},
      {"wait", "--batch", "j", "--timeout", "30"},
      {"cancel", "--batch", "j"},
  };
  for (auto args : verbs) {
    std::string what;
    for (const auto& a : args) what += a + " ";
    args.push_back("-o");
    args.push_back("json");
    r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << what << "\n" << r.Describe();
    EXPECT_FALSE(json::parse(r.out, nullptr, false).is_discarded())
        << what << "printed invalid JSON:\n" << r.out;
  }
  json all = CtlJson({"status"});
  ASSERT_TRUE(all.contains("batches")) << all.dump();
  EXPECT_EQ(all["batches"].size(), 1u);
  // Usage errors exit 2.
  EXPECT_EQ(Ctl({"status", "-o", "yaml"}).exit_code, 2);
  EXPECT_EQ(Ctl({}).exit_code, 2);
  EXPECT_EQ(Ctl({"submit", in}).exit_code, 2) << "--batch is required";
  EXPECT_EQ(Ctl({"frobnicate"}).exit_code, 2);
}

// ------------------------------------------------------------------ auth

TEST_F(CliTest, OperatorVerbsNeedAnOperatorToken) {
  auto r = Assessctl(*coord_, "", {"status"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("no token"), std::string::npos) << r.err;

  std::string bogus = dir_.Join("bogus.token");
  WriteFile(bogus, "aq1_operator_000000000000000000000000000000000000000000000000\n");
  r = Assessctl(*coord_, bogus, {"status"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("unknown or revoked token"), std::string::npos) << r.err;

  // A revoked token that was never used (so not cached) is refused.
  std::string revoked = coord_->CreateToken("operator", "gone");
  auto rv = aqtest::Run({BinPath("coordinatord"), "--db", coord_->db(), "token", "revoke", "gone"});
  ASSERT_EQ(rv.exit_code, 0) << rv.Describe();
  r = Assessctl(*coord_, revoked, {"status"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("unknown or revoked token"), std::string::npos) << r.err;

  std::string in = Inputs("auth", {{"a.json", Meta("a")}});
  const std::vector<std::vector<std::string>> verbs = {
      {"submit", in, "--batch", "x"}, {"status"},          {"list"},
      {"show", "1"},                   {"result", "1"},     {"retry", "1"},
      {"cancel", "1"},                 {"export", "--batch", "x"},
      {"workers"},                     {"workers", "drain", "w"},
      {"pause", "--batch", "x"},       {"resume", "--batch", "x"}};
  for (const auto& args : verbs) {
    r = Assessctl(*coord_, wk_, args);
    std::string what;
    for (const auto& a : args) what += a + " ";
    EXPECT_EQ(r.exit_code, 1) << what << r.Describe();
    EXPECT_NE(r.err.find("has role worker; this call needs operator"), std::string::npos)
        << what << r.Describe();
  }
  // Nothing was submitted with the worker token.
  r = Ctl({"status", "--batch", "x"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("no batch 'x'"), std::string::npos) << r.err;
}

// Collects what the API client logs (it reports a refused session only there).
class CaptureSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::string text() {
    std::lock_guard<std::mutex> l(this->mutex_);
    return text_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    text_.append(msg.payload.data(), msg.payload.size());
    text_ += "\n";
  }
  void flush_() override {}

 private:
  std::string text_;
};

TEST_F(CliTest, OperatorTokenCannotCallTheWorkerService) {
  const std::string op_token = ReadToken(op_);

  // The session stream itself ends with PERMISSION_DENIED.
  {
    auto stub = v1::WorkerService::NewStub(coord_->NewChannel());
    auto ctx = Ctx(op_token, 10000);
    auto stream = stub->Session(ctx.get());
    v1::WorkerMessage hello;
    hello.mutable_hello()->set_worker_name("intruder");
    hello.mutable_hello()->set_slots(4);
    stream->Write(hello);
    stream->WritesDone();
    v1::CoordinatorMessage m;
    EXPECT_FALSE(stream->Read(&m)) << "no welcome or lease for an operator token";
    grpc::Status st = stream->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
    EXPECT_NE(st.error_message().find("needs worker"), std::string::npos) << st.error_message();
  }

  // Through worker/api_client: the session is refused, unary calls say so.
  auto sink = std::make_shared<CaptureSink>();
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  auto client = assessq::ApiClient::Create({coord_->address(), op_token, {}, "intruder", 2});
  ASSERT_TRUE(client.ok()) << client.status();
  std::atomic<int> messages{0};
  (*client)->Start([&](const v1::CoordinatorMessage&) { ++messages; });
  bool refused = PollUntil(
      [&] { return sink->text().find("coordinator refused the session") != std::string::npos; },
      30000, 20);
  EXPECT_TRUE(refused) << "log: " << sink->text();
  EXPECT_NE(sink->text().find("needs worker"), std::string::npos) << sink->text();
  EXPECT_FALSE((*client)->connected());

  v1::HeartbeatRequest hb;
  hb.set_job_id(1);
  hb.set_token(1);
  auto h = (*client)->Heartbeat(hb);
  EXPECT_EQ(h.status().code(), absl::StatusCode::kPermissionDenied) << h.status();
  v1::CompleteRequest c;
  c.set_job_id(1);
  c.set_token(1);
  c.set_result_json("{}");
  auto cr = (*client)->Complete(c);
  EXPECT_EQ(cr.status().code(), absl::StatusCode::kPermissionDenied) << cr.status();
  (*client)->Stop();
  client->reset();
  spdlog::set_default_logger(previous);
  EXPECT_EQ(messages.load(), 0);
  // The intruder never became a worker.
  EXPECT_EQ(CtlJson({"workers"}).size(), 0u);
}

}  // namespace
}  // namespace aqtest
