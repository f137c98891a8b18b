// The operator RPCs the integration tests call directly (not through
// assessctl), with a bearer token; each throws std::runtime_error carrying
// the RPC's error, so a refused call fails the test that made it.
#pragma once

#include <stdexcept>
#include <string>

#include "assessq/v1/assessq.grpc.pb.h"
#include "tests/support/drivers.h"

namespace aqtest {

inline assessq::v1::SubmitResponse SubmitRpc(const Coordinator& c, const std::string& token,
                                             const assessq::v1::SubmitRequest& req) {
  assessq::v1::SubmitResponse resp;
  auto ctx = Ctx(token);
  auto st = c.OperatorStub()->Submit(ctx.get(), req, &resp);
  if (!st.ok()) throw std::runtime_error("Submit: " + st.error_message());
  return resp;
}

inline assessq::v1::JobDetail ShowJobRpc(const Coordinator& c, const std::string& token,
                                         int64_t job) {
  assessq::v1::JobRef ref;
  ref.set_job_id(job);
  assessq::v1::JobDetail d;
  auto ctx = Ctx(token);
  auto st = c.OperatorStub()->ShowJob(ctx.get(), ref, &d);
  if (!st.ok()) throw std::runtime_error("ShowJob: " + st.error_message());
  return d;
}

}  // namespace aqtest
