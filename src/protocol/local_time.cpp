#include "ecu2mqtt/protocol/local_time.hpp"

#include <chrono>
#include <cstdio>

namespace ecu2mqtt {
namespace {

bool all_digits(std::string_view s) {
    for (char c : s)
        if (c < '0' || c > '9')
            return false;
    return !s.empty();
}

int to_int(std::string_view s) {
    int v = 0;
    for (char c : s)
        v = v * 10 + (c - '0');
    return v;
}

bool is_valid(const LocalDateTime& t) {
    using namespace std::chrono;
    const year_month_day ymd{year{t.year}, month{static_cast<unsigned>(t.month)},
                             day{static_cast<unsigned>(t.day)}};
    return ymd.ok() && t.hour >= 0 && t.hour < 24 && t.minute >= 0 && t.minute < 60 &&
           t.second >= 0 && t.second < 60;
}

} // namespace

std::optional<LocalDateTime> parse_compact_timestamp(std::string_view text) {
    if (text.size() != 14 || !all_digits(text))
        return std::nullopt;
    LocalDateTime t{to_int(text.substr(0, 4)),  to_int(text.substr(4, 2)),
                    to_int(text.substr(6, 2)),  to_int(text.substr(8, 2)),
                    to_int(text.substr(10, 2)), to_int(text.substr(12, 2))};
    if (!is_valid(t))
        return std::nullopt;
    return t;
}

std::string format_compact(const LocalDateTime& t) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02d", t.year, t.month, t.day, t.hour,
                  t.minute, t.second);
    return buf;
}

std::string format_iso(const LocalDateTime& t) {
    std::string out;
    append_iso(out, t);
    return out;
}

void append_iso(std::string& out, const LocalDateTime& t) {
    const auto fits = [](int value, int limit) { return value >= 0 && value <= limit; };
    if (!fits(t.year, 9999) || !fits(t.month, 99) || !fits(t.day, 99) || !fits(t.hour, 99) ||
        !fits(t.minute, 99) || !fits(t.second, 99)) {
        char buf[80];
        const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", t.year,
                                    t.month, t.day, t.hour, t.minute, t.second);
        out.append(buf, static_cast<std::size_t>(n));
        return;
    }
    // Every field fits its width: the digits are written directly, as %04d and %02d would.
    const auto two = [](char* at, int value) {
        at[0] = static_cast<char>('0' + value / 10);
        at[1] = static_cast<char>('0' + value % 10);
    };
    char buf[19];
    two(buf, t.year / 100);
    two(buf + 2, t.year % 100);
    buf[4] = '-';
    two(buf + 5, t.month);
    buf[7] = '-';
    two(buf + 8, t.day);
    buf[10] = 'T';
    two(buf + 11, t.hour);
    buf[13] = ':';
    two(buf + 14, t.minute);
    buf[16] = ':';
    two(buf + 17, t.second);
    out.append(buf, sizeof buf);
}

std::string format_iso(const LocalDate& d) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", d.year, d.month, d.day);
    return buf;
}

std::optional<LocalDate> parse_iso_date(std::string_view text) {
    if (text.size() != 10 || text[4] != '-' || text[7] != '-')
        return std::nullopt;
    const std::string compact = std::string(text.substr(0, 4)) + std::string(text.substr(5, 2)) +
                                std::string(text.substr(8, 2)) + "000000";
    const auto t = parse_compact_timestamp(compact);
    if (!t)
        return std::nullopt;
    return date_of(*t);
}

std::int64_t to_epoch_seconds(const LocalDateTime& t) {
    using namespace std::chrono;
    const sys_days days{year_month_day{year{t.year}, month{static_cast<unsigned>(t.month)},
                                       day{static_cast<unsigned>(t.day)}}};
    return static_cast<std::int64_t>(days.time_since_epoch().count()) * 86400 + t.hour * 3600 +
           t.minute * 60 + t.second;
}

LocalDateTime from_epoch_seconds(std::int64_t seconds) {
    using namespace std::chrono;
    std::int64_t day_count = seconds / 86400;
    std::int64_t rest = seconds % 86400;
    if (rest < 0) {
        rest += 86400;
        --day_count;
    }
    const year_month_day ymd{sys_days{days{day_count}}};
    return {static_cast<int>(ymd.year()),
            static_cast<int>(static_cast<unsigned>(ymd.month())),
            static_cast<int>(static_cast<unsigned>(ymd.day())),
            static_cast<int>(rest / 3600),
            static_cast<int>(rest % 3600 / 60),
            static_cast<int>(rest % 60)};
}

LocalDateTime add_seconds(const LocalDateTime& t, std::int64_t seconds) {
    return from_epoch_seconds(to_epoch_seconds(t) + seconds);
}

} // namespace ecu2mqtt
