// PVOutput's API (r2) as bytes: the form bodies of addstatus, addbatchstatus and addoutput, and
// what its replies and rate-limit headers mean. Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ecu2mqtt {

inline constexpr std::string_view kPvoutputAddStatus = "/service/r2/addstatus.jsp";
inline constexpr std::string_view kPvoutputAddBatchStatus = "/service/r2/addbatchstatus.jsp";
inline constexpr std::string_view kPvoutputAddOutput = "/service/r2/addoutput.jsp";

// At most this many statuses per addbatchstatus, and this many days old.
struct PvoutputLimits {
    std::size_t batch = 30;
    int max_age_days = 14;
};
PvoutputLimits pvoutput_limits(bool donor); // donors: 100 statuses, 90 days

// One status: `slot` is "YYYY-MM-DDThh:mm" in the system's local time.
struct PvoutputStatusValues {
    std::string slot;
    double lifetime_wh = 0; // sent as v1 with c1=2: PVOutput derives the day's energy itself
    double power_w = 0;     // v2
    std::optional<double> temperature_c; // v5
    std::optional<double> voltage_v;     // v6
};

// "d=YYYYMMDD&t=hh:mm&v1=…&v2=…&c1=2" (v5, v6 when known).
std::string addstatus_body(const PvoutputStatusValues& status);
// "data=d,t,v1,v2[,v3,v4,v5,v6];…&c1=2", oldest first as given.
std::string addbatchstatus_body(const std::vector<PvoutputStatusValues>& statuses);
// "d=YYYYMMDD&g=Wh&pp=W&pt=hh:mm"; `day` is "YYYY-MM-DD".
std::string addoutput_body(const std::string& day, double generated_wh, double peak_power_w,
                           const std::string& peak_time);

// PVOutput's date and time of a slot: "YYYYMMDD", "hh:mm".
std::string pvoutput_date(std::string_view slot);
std::string pvoutput_time(std::string_view slot);

// One status of addbatchstatus's reply ("20260601,10:05,1").
struct PvoutputBatchResult {
    std::string slot; // "YYYY-MM-DDThh:mm"
    bool added = false;
};
// Nullopt when the body is not such a list.
std::optional<std::vector<PvoutputBatchResult>> parse_batch_reply(std::string_view body);

enum class PvoutputReplyKind {
    Ok,
    BadRequest,  // 400: this request (or status) will never be taken
    AuthFailed,  // 401, or 403 other than the rate limit: stop
    RateLimited, // 403 "Exceeded number requests per hour"
    Retry,       // 5xx and anything unexpected: back off and try again
};
struct PvoutputReply {
    PvoutputReplyKind kind = PvoutputReplyKind::Ok;
    std::string reason; // PVOutput's own words, one line, for a log and the status page
};
PvoutputReply classify_reply(int http_status, std::string_view body);

// A refusal's reason without the values PVOutput puts in it ("Energy value [5200] too high for
// system size [3000]"): two statuses refused for one cause of the system's compare alike.
std::string refusal_cause(std::string_view reason);

// X-Rate-Limit-Remaining, -Limit and -Reset (Unix seconds), each when present and a number.
struct PvoutputRateLimit {
    std::optional<int> remaining;
    std::optional<int> limit;
    std::optional<std::int64_t> reset_unix;
};
PvoutputRateLimit parse_rate_limit(std::string_view remaining, std::string_view limit,
                                   std::string_view reset);

} // namespace ecu2mqtt
