#include "ecu2mqtt/protocol/pvoutput_api.hpp"

#include <charconv>
#include <cmath>

namespace ecu2mqtt {
namespace {

std::string whole(double value) {
    return std::to_string(std::llround(value));
}

std::string one_decimal(double value) {
    const auto tenths = std::llround(value * 10);
    std::string text = std::to_string(tenths / 10) + "." + std::to_string(std::llabs(tenths % 10));
    if (tenths < 0 && tenths > -10)
        text.insert(0, "-");
    return text;
}

template <typename Number> std::optional<Number> number_of(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r'))
        text.remove_suffix(1);
    Number value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty())
        return std::nullopt;
    return value;
}

std::string first_line(std::string_view body) {
    const auto end = body.find_first_of("\r\n");
    std::string line(body.substr(0, end == std::string_view::npos ? body.size() : end));
    if (line.size() > 200)
        line.resize(200);
    return line;
}

} // namespace

PvoutputLimits pvoutput_limits(bool donor) {
    return donor ? PvoutputLimits{100, 90} : PvoutputLimits{30, 14};
}

std::string pvoutput_date(std::string_view slot) {
    if (slot.size() < 10)
        return std::string(slot);
    return std::string(slot.substr(0, 4)) + std::string(slot.substr(5, 2)) +
           std::string(slot.substr(8, 2));
}

std::string pvoutput_time(std::string_view slot) {
    return slot.size() >= 16 ? std::string(slot.substr(11, 5)) : std::string();
}

std::string addstatus_body(const PvoutputStatusValues& status) {
    // Digits, '-', ':' and '.' only: nothing here needs percent-encoding but the ':' of t,
    // which PVOutput takes as it is.
    std::string body = "d=" + pvoutput_date(status.slot) + "&t=" + pvoutput_time(status.slot) +
                       "&v1=" + whole(status.lifetime_wh) + "&v2=" + whole(status.power_w);
    if (status.temperature_c)
        body += "&v5=" + one_decimal(*status.temperature_c);
    if (status.voltage_v)
        body += "&v6=" + one_decimal(*status.voltage_v);
    return body + "&c1=2";
}

std::string addbatchstatus_body(const std::vector<PvoutputStatusValues>& statuses) {
    std::string body = "data=";
    for (std::size_t i = 0; i < statuses.size(); ++i) {
        const auto& s = statuses[i];
        if (i)
            body += ';';
        body += pvoutput_date(s.slot) + "," + pvoutput_time(s.slot) + "," + whole(s.lifetime_wh) +
                "," + whole(s.power_w);
        if (s.temperature_c || s.voltage_v) // v3 and v4 (consumption) are not ours: -1 is none
            body += ",-1,-1," + (s.temperature_c ? one_decimal(*s.temperature_c) : "") + "," +
                    (s.voltage_v ? one_decimal(*s.voltage_v) : "");
    }
    return body + "&c1=2";
}

std::string addoutput_body(const std::string& day, double generated_wh, double peak_power_w,
                           const std::string& peak_time) {
    std::string body = "d=" + pvoutput_date(day + "T00:00") + "&g=" + whole(generated_wh);
    if (!peak_time.empty())
        body += "&pp=" + whole(peak_power_w) + "&pt=" + peak_time;
    return body;
}

std::optional<std::vector<PvoutputBatchResult>> parse_batch_reply(std::string_view body) {
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' '))
        body.remove_suffix(1);
    std::vector<PvoutputBatchResult> results;
    while (!body.empty()) {
        const auto end = body.find(';');
        const auto item = body.substr(0, end);
        body = end == std::string_view::npos ? std::string_view() : body.substr(end + 1);
        const auto c1 = item.find(',');
        const auto c2 = c1 == std::string_view::npos ? c1 : item.find(',', c1 + 1);
        if (c2 == std::string_view::npos)
            return std::nullopt;
        const auto date = item.substr(0, c1);
        const auto time = item.substr(c1 + 1, c2 - c1 - 1);
        const auto flag = item.substr(c2 + 1);
        if (date.size() != 8 || time.size() != 5 || time[2] != ':' || (flag != "0" && flag != "1"))
            return std::nullopt;
        results.push_back({std::string(date.substr(0, 4)) + "-" + std::string(date.substr(4, 2)) +
                               "-" + std::string(date.substr(6, 2)) + "T" + std::string(time),
                           flag == "1"});
    }
    return results;
}

PvoutputReply classify_reply(int http_status, std::string_view body) {
    const std::string reason = first_line(body);
    if (http_status == 200)
        return {PvoutputReplyKind::Ok, reason};
    if (http_status == 400)
        return {PvoutputReplyKind::BadRequest, reason};
    if (http_status == 401)
        return {PvoutputReplyKind::AuthFailed, reason};
    if (http_status == 403)
        return {reason.find("Exceeded number requests") != std::string::npos
                    ? PvoutputReplyKind::RateLimited
                    : PvoutputReplyKind::AuthFailed,
                reason};
    return {PvoutputReplyKind::Retry,
            "HTTP " + std::to_string(http_status) + (reason.empty() ? "" : ": " + reason)};
}

std::string refusal_cause(std::string_view reason) {
    std::string cause;
    bool in_brackets = false;
    for (const char c : reason) {
        if (c == '[')
            in_brackets = true;
        else if (c == ']')
            in_brackets = false;
        else if (in_brackets)
            continue;
        cause += (c >= '0' && c <= '9') ? '#' : c;
    }
    // A run of digits outside brackets counts as one value, whatever its length.
    std::string folded;
    for (const char c : cause)
        if (c != '#' || folded.empty() || folded.back() != '#')
            folded += c;
    return folded;
}

PvoutputRateLimit parse_rate_limit(std::string_view remaining, std::string_view limit,
                                   std::string_view reset) {
    return {number_of<int>(remaining), number_of<int>(limit), number_of<std::int64_t>(reset)};
}

} // namespace ecu2mqtt
