// How assessctl shows tokens and money (show, status, budget): USD amounts,
// a Cost with its "price unknown" part, token totals, and the JSON forms.
// Model names come from the agent's traffic (through the gateway): every
// text here is returned raw for the caller to print through Safe()/Table or
// PrintJson, which escape it (client/cli_context.h).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "assessq/v1/assessq.pb.h"

namespace assessq::cli {

std::string Usd(double usd);                // "$0.1234"; "-" for a negative (unknown) figure
std::string CostText(const v1::Cost& c);   // "$1.2000", "$1.2000 + price unknown (a/b, c/d)"
int64_t TotalTokens(const v1::Usage& u);    // every kind of every model
std::string TokensText(const v1::Usage& u);  // "12,345 (in 1,000 / out 200 / cache w 0 / r 11,145)"
nlohmann::json UsageJson(const v1::Usage& u);
nlohmann::json CostJson(const v1::Cost& c);
nlohmann::json SpendJson(const v1::BatchSpend& s);

}  // namespace assessq::cli
