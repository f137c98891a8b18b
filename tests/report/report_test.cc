// `assessctl report` end to end: a real coordinatord, the 1,152 Masader
// metadata files submitted with the real assessctl, completed over the real
// worker API by assessq-simworker --assess (the offline assessor's real,
// varied assessments; every 40th job fails its first attempt, every 10th
// claims an unseen match and so carries a trust flag, every 20th has a
// denied request in its simulated gateway log), then the report written and
// opened in headless Chromium (Debian's `chromium`, started by the test):
// after the page's JS ran the charts' SVG has a bar per grade with the
// export's counts, the table has all 1,152 rows, URL-hash filters and sorting
// work, a dataset opens with its assessment, flags and provenance, and a
// screenshot is not blank. Fails, never skips, when Chromium is missing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <sstream>

#include "tests/integration/harness.h"

namespace aqtest {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kMasaderFiles = 1152;
constexpr int kFailFirstEvery = 40, kOverclaimEvery = 10, kDenyEvery = 20;
const std::vector<std::string> kGrades = {"ممتاز", "جيد", "مقبول", "ضعيف"};

// A program on $PATH (the harness execs paths, not names).
std::string Which(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string d; std::getline(dirs, d, ':');)
    if (!d.empty() && access((d + "/" + name).c_str(), X_OK) == 0) return d + "/" + name;
  return "";
}

std::string ChromiumPath() {
  if (const char* e = std::getenv("ASSESSQ_CHROMIUM"); e && *e) return e;
  for (const char* name : {"chromium", "chromium-browser"})
    if (std::string p = Which(name); !p.empty()) return p;
  return "";
}

// Percent-encodes a URL hash parameter value (UTF-8 bytes).
std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// Text serialized the way Chromium's DOM dump writes text nodes.
std::string HtmlText(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

// Every start tag beginning with `prefix` (e.g. `<tr class="ds`), up to its '>'.
std::vector<std::string> Tags(const std::string& dom, const std::string& prefix) {
  std::vector<std::string> out;
  for (size_t at = dom.find(prefix); at != std::string::npos; at = dom.find(prefix, at + 1)) {
    size_t end = dom.find('>', at);
    if (end == std::string::npos) break;
    out.push_back(dom.substr(at, end - at + 1));
  }
  return out;
}

std::string Attr(const std::string& tag, const std::string& name) {
  std::string key = " " + name + "=\"";
  size_t at = tag.find(key);
  if (at == std::string::npos) return "";
  at += key.size();
  return tag.substr(at, tag.find('"', at) - at);
}

bool Hidden(const std::string& tag) { return tag.find(" hidden") != std::string::npos; }

size_t Count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + needle.size())) ++n;
  return n;
}

class ReportTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (sim_) sim_->Kill(SIGKILL);
    if (coord_) {
      EXPECT_NO_THROW(coord_->Stop());
      if (HasFailure()) std::cerr << "coordinatord log tail:\n" << Tail(coord_->log()) << "\n";
    }
  }

  // Chromium headless on `url`: the DOM after scripts ran (dump) or a
  // screenshot into `png`.
  RunResult Chromium(const std::string& url, const std::string& png = "") {
    static int n = 0;
    std::vector<std::string> argv = {
        chromium_, "--headless=new", "--no-sandbox", "--disable-gpu",
        "--user-data-dir=" + dir_.Join("chrome-" + std::to_string(n++)),
        "--no-first-run", "--no-default-browser-check", "--disable-extensions",
        "--disable-background-networking", "--disable-sync", "--disable-component-update",
        "--hide-scrollbars", "--mute-audio", "--virtual-time-budget=15000"};
    if (png.empty()) {
      argv.push_back("--dump-dom");
    } else {
      argv.push_back("--window-size=1280,2000");
      argv.push_back("--screenshot=" + png);
    }
    argv.push_back(url);
    return aqtest::Run(argv, 120000);
  }

  std::string Dom(const std::string& hash) {
    auto r = Chromium(page_url_ + (hash.empty() ? "" : "#" + hash));
    if (r.exit_code != 0 || r.out.find("</html>") == std::string::npos)
      throw std::runtime_error("chromium --dump-dom failed: " + r.Describe().substr(0, 4000));
    return r.out;
  }

  TempDir dir_;
  std::unique_ptr<Coordinator> coord_;
  std::unique_ptr<Child> sim_;
  std::string chromium_, page_url_;
};

TEST_F(ReportTest, CatalogueReportRendersChartsTableFiltersAndDetailsInChromium) {
  auto t0 = std::chrono::steady_clock::now();
  auto lap = [&](const char* what) {
    std::cerr << "[report_test] " << what << " at "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - t0)
                     .count()
              << " ms\n";
  };
  chromium_ = ChromiumPath();
  ASSERT_FALSE(chromium_.empty())
      << "Chromium is missing: install Debian's `chromium` (scripts/install-deps.sh does)";
  const std::string masader = MasaderDir();
  ASSERT_TRUE(fs::is_directory(masader)) << "the Masader catalogue is missing: " << masader;

  coord_ = std::make_unique<Coordinator>(dir_.path());
  std::string op = coord_->CreateToken("operator", "ops");
  std::string wk = coord_->CreateToken("worker", "workers");
  coord_->Start();
  sim_ = Child::Spawn({BinPath("assessq-simworker"), "--coordinator", coord_->address(),
                       "--token-file", wk, "--name", "sim-assessor", "--slots", "8",
                       "--work-ms", "2", "--assess", "--fail-first-every",
                       std::to_string(kFailFirstEvery), "--overclaim-every",
                       std::to_string(kOverclaimEvery), "--netlog", "--deny-every",
                       std::to_string(kDenyEvery)},
                      dir_.Join("sim.log"));
  auto ctl = [&](const std::vector<std::string>& args, int timeout_ms = 120000) {
    return Assessctl(*coord_, op, args, timeout_ms);
  };

  // ------------------------------------------------- submit and complete
  auto r = ctl({"submit", masader, "--batch", "masader", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_EQ(JsonOut(r)["queued"], kMasaderFiles);
  json st;
  bool done = PollUntil(
      [&] {
        auto s = ctl({"status", "--batch", "masader", "-o", "json"});
        if (s.exit_code != 0) return false;
        st = JsonOut(s);
        return st["counts"].value("succeeded", int64_t{0}) == kMasaderFiles;
      },
      90000, 250);
  ASSERT_TRUE(done) << "the batch never completed; last status " << st.dump() << "\n"
                    << Tail(dir_.Join("sim.log"));
  lap("batch completed");

  // What the report must show, from the export.
  r = ctl({"export", "--batch", "masader", "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::map<std::string, int> grade_count;
  std::map<int64_t, json> by_id;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    json row = json::parse(line);
    grade_count[row["assessment"]["تقدير_الجودة"].get<std::string>()]++;
    by_id[row["job_id"].get<int64_t>()] = row;
  }
  ASSERT_EQ(by_id.size(), static_cast<size_t>(kMasaderFiles));
  int varied = 0;
  for (const auto& g : kGrades) varied += grade_count[g] > 0;
  EXPECT_GE(varied, 3) << "the offline assessor's grades should vary over the catalogue";

  // The job the detail view is checked on: retried, flagged and with a
  // denied request (ids are sequential from 1 in a fresh database).
  const int64_t special = kFailFirstEvery;
  ASSERT_TRUE(by_id.count(special));
  const json& sp = by_id[special];
  ASSERT_EQ(sp["attempts"], 2) << sp.dump();
  ASSERT_EQ(sp["flags"], json::array({"claims_match_without_inspection"})) << sp.dump();
  ASSERT_EQ(sp["provenance"]["denied_requests"], 1) << sp.dump();

  // ------------------------------------------------- the report
  std::string out = dir_.Join("report");
  r = ctl({"report", "--batch", "masader", "--out", out});
  lap("report written");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::string path = out + "/index.html";
  EXPECT_NE(r.out.find("wrote " + path + ": 1152 dataset(s) ("), std::string::npos) << r.out;
  for (const auto& g : kGrades)
    if (grade_count[g] > 0)
      EXPECT_NE(r.out.find(g + " " + std::to_string(grade_count[g])), std::string::npos) << r.out;
  ASSERT_TRUE(fs::exists(path));
  std::string html = ReadFile(path);
  EXPECT_EQ(html.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(html.find("<html lang=\"ar\" dir=\"rtl\">"), std::string::npos);
  // Exactly the template's two scripts (data and code): nothing in the data
  // closed one, and nothing is loaded from elsewhere.
  EXPECT_EQ(Count(html, "</script>"), 2u);
  EXPECT_EQ(Count(html, "<script src"), 0u);
  EXPECT_EQ(Count(html, "<link"), 0u);
  page_url_ = "file://" + path;

  // ------------------------------------------------- rendered DOM
  std::string dom = Dom("");
  lap("dom dumped");
  EXPECT_NE(dom.find("<body data-ready=\"1\">"), std::string::npos) << "the page's script did not finish";
  auto err = Tags(dom, "<div id=\"error\"");
  ASSERT_EQ(err.size(), 1u);
  EXPECT_TRUE(Hidden(err[0])) << "the page reported an error: "
                              << dom.substr(dom.find("<div id=\"error\""), 400);
  EXPECT_EQ(Count(dom, "<svg id=\"grade-chart\""), 1u);
  EXPECT_EQ(Count(dom, "<svg id=\"criteria-chart\""), 1u);
  EXPECT_EQ(Count(dom, "<svg id=\"hist-chart\""), 1u);
  auto bars = Tags(dom, "<rect class=\"bar\"");
  ASSERT_EQ(bars.size(), kGrades.size()) << "one bar per grade";
  for (size_t i = 0; i < bars.size(); ++i) {
    EXPECT_EQ(Attr(bars[i], "data-grade"), kGrades[i]);
    EXPECT_EQ(Attr(bars[i], "data-count"), std::to_string(grade_count[kGrades[i]]));
    if (grade_count[kGrades[i]] > 0) EXPECT_NE(Attr(bars[i], "height"), "0") << bars[i];
  }
  EXPECT_EQ(Tags(dom, "<rect class=\"cbar\"").size(), 7u) << "one bar per criterion";
  EXPECT_EQ(Tags(dom, "<rect class=\"hbar\"").size(), 10u);
  auto th = Tags(dom, "<th ");
  EXPECT_GE(th.size(), 15u);
  auto rows = Tags(dom, "<tr class=\"ds");
  ASSERT_EQ(rows.size(), static_cast<size_t>(kMasaderFiles));
  EXPECT_EQ(std::count_if(rows.begin(), rows.end(), Hidden), 0);
  EXPECT_NE(dom.find("data-shown=\"1152\""), std::string::npos);
  // Default order: by job id.
  EXPECT_EQ(Attr(rows.front(), "data-id"), "1");
  EXPECT_EQ(Attr(rows.back(), "data-id"), std::to_string(kMasaderFiles));

  // ------------------------------------------------- filter and sort by hash
  const std::string good = "جيد";
  dom = Dom("grade=" + UrlEncode(good) + "&sort=score&dir=desc");
  lap("filtered dom dumped");
  rows = Tags(dom, "<tr class=\"ds");
  ASSERT_EQ(rows.size(), static_cast<size_t>(kMasaderFiles));
  std::vector<std::string> visible;
  for (const auto& t : rows)
    if (!Hidden(t)) visible.push_back(t);
  EXPECT_EQ(visible.size(), static_cast<size_t>(grade_count[good]));
  EXPECT_NE(dom.find("data-shown=\"" + std::to_string(grade_count[good]) + "\""), std::string::npos);
  for (const auto& t : visible) ASSERT_EQ(Attr(t, "data-grade"), good) << t;
  int max_good = 0, prev = 101;
  for (const auto& [id, row] : by_id)
    if (row["assessment"]["تقدير_الجودة"] == good)
      max_good = std::max(max_good, row["assessment"]["درجة_الجودة"].get<int>());
  for (size_t i = 0; i < visible.size(); ++i) {
    int score = by_id[std::stoll(Attr(visible[i], "data-id"))]["assessment"]["درجة_الجودة"];
    if (i == 0) EXPECT_EQ(score, max_good);
    ASSERT_LE(score, prev) << "rows must be sorted by score, descending";
    prev = score;
  }
  auto sorted_th = Tags(dom, "<th ");
  EXPECT_TRUE(std::any_of(sorted_th.begin(), sorted_th.end(), [](const std::string& t) {
    return Attr(t, "data-col") == "score" && Attr(t, "aria-sort") == "descending";
  }));

  // ------------------------------------------------- one dataset in full
  const std::string key = sp["dataset_key"];
  dom = Dom("q=" + UrlEncode(key) + "&open=" + std::to_string(special));
  lap("detail dom dumped");
  rows = Tags(dom, "<tr class=\"ds");
  visible.clear();
  for (const auto& t : rows)
    if (!Hidden(t)) visible.push_back(t);
  ASSERT_GE(visible.size(), 1u);
  EXPECT_TRUE(std::any_of(visible.begin(), visible.end(), [&](const std::string& t) {
    return Attr(t, "data-id") == std::to_string(special);
  }));
  size_t det = dom.find("<tr class=\"detail\" data-id=\"" + std::to_string(special) + "\"");
  ASSERT_NE(det, std::string::npos) << "the dataset's detail row did not open";
  size_t next_row = dom.find("<tr class=\"ds", det);
  std::string detail = dom.substr(det, next_row == std::string::npos ? std::string::npos : next_row - det);
  const json& a = sp["assessment"];
  EXPECT_NE(detail.find(HtmlText(a["الملخص"].get<std::string>())), std::string::npos) << "summary";
  for (const auto& s : a["نقاط_القوة"])
    EXPECT_NE(detail.find(HtmlText(s.get<std::string>())), std::string::npos) << s;
  for (const auto& s : a["نقاط_الضعف"])
    EXPECT_NE(detail.find(HtmlText(s.get<std::string>())), std::string::npos) << s;
  for (const auto& [k, v] : a.items()) {
    if (k == "الاسم" || k == "درجة_الجودة" || k == "تقدير_الجودة") continue;  // the heading
    std::string heading = k;
    std::replace(heading.begin(), heading.end(), '_', ' ');
    EXPECT_NE(detail.find(">" + heading + "<"), std::string::npos) << "key " << k;
  }
  EXPECT_NE(detail.find("claims_match_without_inspection"), std::string::npos) << "flag";
  EXPECT_NE(detail.find("telemetry.example.invalid:443"), std::string::npos) << "denied request";
  EXPECT_NE(detail.find("host not in the allowlist"), std::string::npos);
  EXPECT_NE(detail.find("simulated agent failure on the first attempt"), std::string::npos)
      << "the failed first attempt";
  EXPECT_NE(detail.find("assessq-offline-assessor:1"), std::string::npos) << "image";
  EXPECT_NE(detail.find(sp["input_sha256"].get<std::string>()), std::string::npos);
  for (const auto& url : a["المصادر_المفتوحة"]) {
    std::string u = url.get<std::string>();
    std::string host = u.substr(u.find("://") + 3);
    host = host.substr(0, host.find_first_of("/?#:"));
    EXPECT_NE(detail.find(HtmlText(host) + ":443"), std::string::npos) << "host contacted " << host;
  }

  // ------------------------------------------------- hostile metadata
  // A dataset whose name tries to close the data <script> and inject markup
  // is shown as text, and the page still works.
  const std::string hostile_name =
      "</script><img src=x onerror=\"document.body.dataset.pwned=1\"> «مدونة» & <!--";
  std::string hostile_dir = dir_.Join("hostile");
  fs::create_directories(hostile_dir);
  WriteFile(hostile_dir + "/hostile.json",
            json{{"Name", hostile_name}, {"License", "MIT License"}, {"Link", "javascript:alert(1)"}}.dump());
  r = ctl({"submit", hostile_dir, "--batch", "hostile", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_TRUE(PollUntil(
      [&] {
        auto s = ctl({"status", "--batch", "hostile", "-o", "json"});
        return s.exit_code == 0 && JsonOut(s)["counts"].value("succeeded", int64_t{0}) == 1;
      },
      30000, 100));
  std::string hostile_out = dir_.Join("hostile-report");
  r = ctl({"report", "--batch", "hostile", "--out", hostile_out});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  html = ReadFile(hostile_out + "/index.html");
  EXPECT_EQ(Count(html, "</script>"), 2u);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  {
    std::string saved = page_url_;
    page_url_ = "file://" + hostile_out + "/index.html";
    dom = Dom("open=" + std::to_string(kMasaderFiles + 1));
    page_url_ = saved;
  }
  lap("hostile dom dumped");
  EXPECT_NE(dom.find("<body data-ready=\"1\">"), std::string::npos);
  EXPECT_EQ(dom.find("data-pwned"), std::string::npos) << "injected markup ran";
  EXPECT_EQ(dom.find("<img"), std::string::npos) << "injected markup was parsed as HTML";
  EXPECT_NE(dom.find(HtmlText(hostile_name)), std::string::npos) << "the name must show as text";
  EXPECT_EQ(dom.find("href=\"javascript:"), std::string::npos);
  EXPECT_EQ(Tags(dom, "<tr class=\"ds").size(), 1u);

  // ------------------------------------------------- screenshot
  std::string png = dir_.Join("shot.png");
  r = Chromium(page_url_, png);
  lap("screenshot taken");
  ASSERT_EQ(r.exit_code, 0) << r.Describe().substr(0, 4000);
  ASSERT_TRUE(fs::exists(png)) << r.Describe().substr(0, 4000);
  std::string python = Which("python3");
  ASSERT_FALSE(python.empty()) << "python3 is missing";
  auto stats_run = aqtest::Run({python, PNG_STATS_PY, png}, 60000);
  lap("screenshot decoded");
  ASSERT_EQ(stats_run.exit_code, 0) << stats_run.Describe();
  json stats = json::parse(stats_run.out);
  EXPECT_EQ(stats["width"], 1280);
  EXPECT_EQ(stats["height"], 2000);
  EXPECT_GE(stats["colours"].get<int>(), 64) << stats.dump() << " (a blank or flat page)";
  EXPECT_GE(stats["nonwhite_fraction"].get<double>(), 0.10) << stats.dump();
  EXPECT_GE(stats["ink_fraction"].get<double>(), 0.01) << stats.dump() << " (no text drawn)";
  if (std::getenv("ASSESSQ_KEEP_TEST_DIRS")) std::cerr << "report: " << path << "\nscreenshot: " << png << "\n";
}

}  // namespace
}  // namespace aqtest
