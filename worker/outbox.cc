#include "worker/outbox.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/channel.h"
#include "common/file_io.h"
#include "common/logging.h"
#include "common/report_caps.h"
#include "worker/api_client.h"

namespace assessq {
namespace fs = std::filesystem;

Disposition DispositionFor(CallFailure f) {
  if (f == CallFailure::kCredentials) return Disposition::kPark;
  if (!IsRetryable(f)) return Disposition::kRemove;  // acknowledged, or refused for good
  // Unreachable: every later report would fail the same way. A fault may be
  // this report's own: the others still go.
  return f == CallFailure::kTransient ? Disposition::kKeepAndStop : Disposition::kKeepAndGoOn;
}

std::string Outbox::Path(int64_t job_id, int64_t lease_token) const {
  return absl::StrCat(dir_, "/", job_id, "-", lease_token, ".pb");
}

absl::Status Outbox::Init() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return absl::InternalError(absl::StrCat("outbox ", dir_, ": ", ec.message()));
  chmod(dir_.c_str(), 0700);
  // A report half-written when the worker died (*.pb.tmp, never renamed) was
  // never acknowledged as stored here: its lease expires and the job runs
  // again. Nothing will read it; remove it.
  for (auto it = fs::directory_iterator(dir_, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > 7 && name.compare(name.size() - 7, 7, ".pb.tmp") == 0) {
      std::error_code rm;
      fs::remove(it->path(), rm);
    }
  }
  // Reports parked for a refused bearer token: this start may have another.
  for (auto it = fs::directory_iterator(ParkedDir(), ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::error_code mv;
    fs::rename(it->path(), fs::path(dir_) / it->path().filename(), mv);
    if (mv) spdlog::error("outbox: cannot put {} back: {}", it->path().string(), mv.message());
  }
  return absl::OkStatus();
}

absl::Status Outbox::Put(const v1::CompleteRequest& report) {
  // Fitted to the coordinator's caps before it is stored: every file here is
  // one the coordinator accepts and Pending can read (kReportMaxBytes).
  v1::CompleteRequest r = report;
  if (std::string cut = FitReport(&r); !cut.empty())
    spdlog::warn("[job={}] report cut to fit the coordinator's caps: {}", r.job_id(), cut);
  std::string data;
  if (!r.SerializeToString(&data)) return absl::InternalError("serialize report");
  if (data.size() > kReportMaxBytes)
    return absl::InternalError(absl::StrCat("report of ", data.size(), " bytes after fitting"));
  std::string final_path = Path(r.job_id(), r.token());
  std::string tmp = final_path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("outbox write: ", std::strerror(errno)));
  if (auto s = WriteAll(fd, data); !s.ok()) {
    close(fd);
    return absl::InternalError(absl::StrCat("outbox write: ", s.message()));
  }
  if (fsync(fd) != 0) {
    close(fd);
    return absl::InternalError(absl::StrCat("outbox fsync: ", std::strerror(errno)));
  }
  close(fd);
  if (rename(tmp.c_str(), final_path.c_str()) != 0)
    return absl::InternalError(absl::StrCat("outbox rename: ", std::strerror(errno)));
  int dfd = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return absl::OkStatus();
}

absl::Status Outbox::Remove(int64_t job_id, int64_t lease_token) {
  if (unlink(Path(job_id, lease_token).c_str()) != 0 && errno != ENOENT)
    return absl::InternalError(absl::StrCat("outbox remove: ", std::strerror(errno)));
  return absl::OkStatus();
}

absl::Status Outbox::Park(int64_t job_id, int64_t lease_token) {
  std::error_code ec;
  fs::create_directories(ParkedDir(), ec);
  if (!ec) fs::rename(Path(job_id, lease_token),
                      absl::StrCat(ParkedDir(), "/", job_id, "-", lease_token, ".pb"), ec);
  if (ec) return absl::InternalError(absl::StrCat("outbox park: ", ec.message()));
  return absl::OkStatus();
}

std::vector<std::string> Outbox::Parked() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(ParkedDir(), ec); !ec && it != fs::directory_iterator();
       it.increment(ec))
    out.push_back(it->path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

DeliveryRound Outbox::Deliver(const SendFn& send) {
  DeliveryRound round;
  for (const auto& r : Pending()) {
    auto resp = send(r);
    const CallFailure f = ClassifyCall(resp.status());
    switch (DispositionFor(f)) {
      case Disposition::kRemove:
        if (!resp.ok()) {
          spdlog::warn("[job={}] report refused ({}): {}", r.job_id(), std::string(CallFailureName(f)),
                       resp.status().message());
          ++round.dropped;
        } else {
          if (!resp->validation_errors().empty())
            spdlog::warn("[job={}] result rejected: {} validation error(s)", r.job_id(),
                         resp->validation_errors_size());
          ++round.delivered;
        }
        (void)Remove(r.job_id(), r.token());
        break;
      case Disposition::kPark:
        spdlog::error("[job={}] report refused for this worker's token ({}); parked in {} until "
                      "workerd starts again (with a valid --token-file)",
                      r.job_id(), resp.status().message(), ParkedDir());
        if (auto s = Park(r.job_id(), r.token()); !s.ok()) {
          spdlog::error("[job={}] {}", r.job_id(), s.ToString());
          ++round.kept;
        } else {
          ++round.parked;
        }
        break;
      case Disposition::kKeepAndGoOn:
        spdlog::warn("[job={}] report failed on the coordinator ({}); sending it again later",
                     r.job_id(), resp.status().message());
        ++round.kept;
        break;
      case Disposition::kKeepAndStop:
        ++round.kept;
        round.stopped = true;
        return round;  // coordinator unreachable: try again later, in order
    }
  }
  return round;
}

std::vector<v1::CompleteRequest> Outbox::Pending(std::vector<std::string>* problems) {
  std::vector<std::pair<fs::file_time_type, std::string>> files;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir_, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    if (it->path().extension() == ".pb" && it->is_regular_file(ec))
      files.push_back({it->last_write_time(ec), it->path().string()});
  }
  std::sort(files.begin(), files.end());
  std::vector<v1::CompleteRequest> out;
  for (const auto& [t, p] : files) {
    auto data = ReadFileToString(p, kReportMaxBytes);
    v1::CompleteRequest r;
    if (!data.ok() || !r.ParseFromString(*data)) {
      // Not one Put wrote (Put bounds every report): set aside, once, so it
      // is not read again at every delivery round.
      if (problems) problems->push_back(p);
      std::error_code rn;
      fs::rename(p, p + ".unreadable", rn);
      spdlog::error("outbox: {} cannot be read ({}); moved aside to {}.unreadable", p,
                    data.ok() ? "not a report" : data.status().ToString(), p);
      continue;
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace assessq
