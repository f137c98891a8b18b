// A Prometheus scrape for the tests: GET http://HOST:PORT/metrics with
// libcurl (no proxy) and the text format parsed into series -> value, where
// a series is the metric name with its labels exactly as served
// (`assessq_jobs{state="queued"}`). Header-only so the integration and the
// end-to-end tests share it; link CURL::libcurl.
#pragma once

#include <curl/curl.h>

#include <map>
#include <optional>
#include <sstream>
#include <string>

namespace aqscrape {

using Series = std::map<std::string, double>;

inline size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// The body of GET url, or empty with `error` set.
inline std::optional<std::string> HttpGet(const std::string& url, std::string* error = nullptr,
                                          long* status = nullptr) {
  CURL* c = curl_easy_init();
  if (!c) return std::nullopt;
  std::string body;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  CURLcode rc = curl_easy_perform(c);
  long code = 0;
  if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  if (status) *status = code;
  if (rc != CURLE_OK) {
    if (error) *error = curl_easy_strerror(rc);
    return std::nullopt;
  }
  return body;
}

inline Series Parse(const std::string& text) {
  Series out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    try {
      out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
    } catch (...) {
    }
  }
  return out;
}

// Scrapes 127.0.0.1:port; empty when nothing answers with 200.
inline std::optional<Series> Scrape(int port, std::string* raw = nullptr) {
  long status = 0;
  auto body = HttpGet("http://127.0.0.1:" + std::to_string(port) + "/metrics", nullptr, &status);
  if (!body || status != 200) return std::nullopt;
  if (raw) *raw = *body;
  return Parse(*body);
}

// The value of one series, or -1 when it is not served.
inline double Value(const Series& s, const std::string& series) {
  auto it = s.find(series);
  return it == s.end() ? -1 : it->second;
}

}  // namespace aqscrape
