// server/net_evidence: the trust flags drawn from the gateway's network log,
// table-driven, with each way a claim can lack its evidence.
#include "server/net_evidence.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace assessq {
namespace {

using nlohmann::json;
using ::testing::ElementsAreArray;

const char kMd[] = R"({"Name": "AJGT", "Link": "https://github.com/komari6/Arabic-twitter-corpus-AJGT",
                       "HF Link": "https://hf.co/datasets/arbml/AJGT"})";

json Result(bool loaded, std::vector<std::string> sources) {
  return {{"تم_تحميل_البيانات", loaded}, {"المصادر_المفتوحة", sources}};
}

std::string Entry(const std::string& host, const std::string& decision, int64_t down,
                  const std::string& kind = "connect") {
  return json({{"host", host}, {"decision", decision}, {"bytes_down", down}, {"kind", kind}})
      .dump();
}

struct Case {
  const char* name;
  bool loaded;
  std::vector<std::string> sources;
  std::string netlog;  // "" = the job had no gateway
  std::vector<std::string> want;
};

TEST(NetEvidenceTest, Flags) {
  const std::string gh = "https://github.com/komari6/Arabic-twitter-corpus-AJGT";
  const std::string paper = "https://aclanthology.org/P17-1000";
  const std::vector<Case> cases = {
      {"metadata only, no gateway", false, {gh}, "", {}},
      {"loaded without any network", true, {}, "", {"claims_loaded_without_download"}},
      {"loaded, download from the dataset's Link host", true, {gh},
       "[" + Entry("github.com", "allow", 5000) + "]", {}},
      {"loaded, download from a subdomain of a data host", true, {},
       "[" + Entry("cdn-lfs.hf.co", "allow", 5000) + "]", {}},
      {"loaded, only the paper host answered", true, {paper},
       "[" + Entry("aclanthology.org", "allow", 5000) + "]", {"claims_loaded_without_download"}},
      {"loaded, data host denied", true, {}, "[" + Entry("github.com", "deny", 0) + "]",
       {"claims_loaded_without_download"}},
      {"loaded, data host allowed but nothing received", true, {},
       "[" + Entry("github.com", "allow", 0) + "]", {"claims_loaded_without_download"}},
      {"loaded, bytes only from the model route", true, {},
       "[" + Entry("github.com", "allow", 900000, "model") + "]",
       {"claims_loaded_without_download"}},
      {"source never contacted", false, {paper}, "[]", {"sources_not_contacted"}},
      {"source contacted, other case and trailing dot in the log", false, {paper},
       "[" + Entry("AclAnthology.org.", "allow", 10) + "]", {}},
      {"source only denied", false, {paper}, "[" + Entry("aclanthology.org", "deny", 0) + "]",
       {"sources_not_contacted"}},
      {"both", true, {paper}, "[]", {"claims_loaded_without_download", "sources_not_contacted"}},
      {"a look-alike host is not the data host", true, {},
       "[" + Entry("evilgithub.com", "allow", 5000) + "]", {"claims_loaded_without_download"}},
      {"unparsable log counts as no gateway", false, {paper}, "not json", {}},
  };
  const json md = json::parse(kMd);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(EvidenceFlags(Result(c.loaded, c.sources), md, ParseNetEvidence(c.netlog)),
                ElementsAreArray(c.want));
  }
}

TEST(NetEvidenceTest, UrlHost) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"https://Example.ORG/x", "example.org"},
      {"http://user:pw@host.example:8080/p?q#f", "host.example"},
      {"https://host.example./", "host.example"},
      {"https://[::1]:443/", "[::1]"},
      {"ftp://host.example/", ""},
      {"host.example/path", ""},
      {"https://", ""},
      {"https://bad host/", ""},
  };
  for (const auto& [url, host] : cases) EXPECT_EQ(UrlHost(url), host) << url;
}

TEST(NetEvidenceTest, HostWithin) {
  EXPECT_TRUE(HostWithin("hf.co", "hf.co"));
  EXPECT_TRUE(HostWithin("cdn-lfs.hf.co", "hf.co"));
  EXPECT_FALSE(HostWithin("xhf.co", "hf.co"));
  EXPECT_FALSE(HostWithin("hf.co", "cdn.hf.co"));
  EXPECT_FALSE(HostWithin("", "hf.co"));
}

}  // namespace
}  // namespace assessq
