#include "ecu2mqtt/ledger/time_zone.hpp"

#include <algorithm>
#include <array>
#include <chrono>

namespace ecu2mqtt {
namespace {

// RFC 8536: a 44-byte header, then the data block it counts; versions 2 and up repeat both with
// 64-bit times and end with a POSIX TZ rule between line breaks.
constexpr std::string_view kMagic = "TZif";
constexpr std::size_t kHeaderSize = 44, kCountsOffset = 20;
constexpr std::size_t kTypeSize = 6;
constexpr std::int64_t kDayS = 86400;

struct Counts {
    std::uint32_t isut, isstd, leap, time, type, chars;
};

std::uint64_t read_be(std::string_view bytes, std::size_t at, std::size_t width) {
    std::uint64_t value = 0;
    for (std::size_t i = at; i < at + width; ++i)
        value = (value << 8) | static_cast<unsigned char>(bytes[i]);
    return value;
}

std::int64_t read_signed(std::string_view bytes, std::size_t at, std::size_t width) {
    const auto raw = read_be(bytes, at, width);
    if (width == 4)
        return static_cast<std::int32_t>(static_cast<std::uint32_t>(raw));
    return static_cast<std::int64_t>(raw);
}

std::optional<Counts> read_header(std::string_view bytes, std::size_t at) {
    if (bytes.size() < at + kHeaderSize || bytes.substr(at, kMagic.size()) != kMagic)
        return std::nullopt;
    std::array<std::uint32_t, 6> c{};
    for (std::size_t i = 0; i < c.size(); ++i)
        c[i] = static_cast<std::uint32_t>(read_be(bytes, at + kCountsOffset + 4 * i, 4));
    return Counts{c[0], c[1], c[2], c[3], c[4], c[5]};
}

std::uint64_t block_size(const Counts& c, std::size_t time_width) {
    return std::uint64_t{c.time} * time_width + c.time + std::uint64_t{c.type} * kTypeSize +
           c.chars + std::uint64_t{c.leap} * (time_width + 4) + c.isstd + c.isut;
}

// `[+-]hh[:mm[:ss]]`, as seconds; advances `text`.
std::optional<std::int32_t> parse_hms(std::string_view& text) {
    int sign = 1;
    if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
        sign = text[0] == '-' ? -1 : 1;
        text.remove_prefix(1);
    }
    std::int32_t total = 0;
    for (int part = 0; part < 3; ++part) {
        if (part > 0) {
            if (!text.starts_with(':'))
                break;
            text.remove_prefix(1);
        }
        std::int32_t value = 0;
        std::size_t digits = 0;
        while (digits < text.size() && digits < 3 && text[digits] >= '0' && text[digits] <= '9')
            value = value * 10 + (text[digits++] - '0');
        if (digits == 0)
            return std::nullopt;
        text.remove_prefix(digits);
        total += value * (part == 0 ? 3600 : part == 1 ? 60 : 1);
    }
    return sign * total;
}

bool skip_name(std::string_view& text) {
    if (text.starts_with('<')) {
        const auto close = text.find('>');
        if (close == std::string_view::npos)
            return false;
        text.remove_prefix(close + 1);
        return true;
    }
    std::size_t n = 0;
    while (n < text.size() &&
           ((text[n] >= 'A' && text[n] <= 'Z') || (text[n] >= 'a' && text[n] <= 'z')))
        ++n;
    text.remove_prefix(n);
    return n >= 3;
}

std::optional<PosixZoneRule::Change> parse_change(std::string_view& text) {
    if (!text.starts_with(",M"))
        return std::nullopt;
    text.remove_prefix(2);
    std::array<int, 3> fields{};
    for (std::size_t i = 0; i < fields.size(); ++i) {
        if (i > 0) {
            if (!text.starts_with('.'))
                return std::nullopt;
            text.remove_prefix(1);
        }
        std::size_t digits = 0;
        while (digits < text.size() && digits < 2 && text[digits] >= '0' && text[digits] <= '9')
            fields[i] = fields[i] * 10 + (text[digits++] - '0');
        if (digits == 0)
            return std::nullopt;
        text.remove_prefix(digits);
    }
    PosixZoneRule::Change change{fields[0], fields[1], fields[2], 7200};
    if (change.month < 1 || change.month > 12 || change.week < 1 || change.week > 5 ||
        change.weekday > 6)
        return std::nullopt;
    if (text.starts_with('/')) {
        text.remove_prefix(1);
        const auto time = parse_hms(text);
        if (!time)
            return std::nullopt;
        change.time_s = *time;
    }
    return change;
}

// The local midnight of the change's day in `year`, in days since the epoch.
std::int64_t change_day(const PosixZoneRule::Change& c, int year) {
    using namespace std::chrono;
    const auto y = std::chrono::year{year};
    const auto m = month{static_cast<unsigned>(c.month)};
    const weekday wd{static_cast<unsigned>(c.weekday)};
    sys_days day = c.week == 5
                       ? sys_days{year_month_weekday_last{y, m, weekday_last{wd}}}
                       : sys_days{year_month_weekday{y, m, wd[static_cast<unsigned>(c.week)]}};
    return day.time_since_epoch().count();
}

int year_of(std::int64_t local_s) {
    using namespace std::chrono;
    const sys_days day{days{local_s >= 0 ? local_s / kDayS : (local_s - kDayS + 1) / kDayS}};
    return static_cast<int>(year_month_day{day}.year());
}

} // namespace

std::optional<PosixZoneRule> PosixZoneRule::parse(std::string_view text) {
    PosixZoneRule rule;
    if (!skip_name(text))
        return std::nullopt;
    const auto std_offset = parse_hms(text);
    if (!std_offset)
        return std::nullopt;
    rule.std_offset_s = -*std_offset; // POSIX counts west of UTC
    if (text.empty())
        return rule;
    if (!skip_name(text))
        return std::nullopt;
    Dst dst;
    dst.offset_s = rule.std_offset_s + 3600;
    if (!text.empty() && !text.starts_with(',')) {
        const auto offset = parse_hms(text);
        if (!offset)
            return std::nullopt;
        dst.offset_s = -*offset;
    }
    const auto start = parse_change(text);
    const auto end = start ? parse_change(text) : std::nullopt;
    if (!start || !end || !text.empty())
        return std::nullopt;
    dst.start = *start;
    dst.end = *end;
    rule.dst = dst;
    return rule;
}

std::int32_t PosixZoneRule::utc_offset_at(std::int64_t utc_s) const {
    if (!dst)
        return std_offset_s;
    const int year = year_of(utc_s + std_offset_s);
    // The start is given in standard time, the end in daylight time.
    const std::int64_t start =
        change_day(dst->start, year) * kDayS + dst->start.time_s - std_offset_s;
    const std::int64_t end = change_day(dst->end, year) * kDayS + dst->end.time_s - dst->offset_s;
    const bool in_dst = start < end ? utc_s >= start && utc_s < end // northern hemisphere
                                    : utc_s >= start || utc_s < end;
    return in_dst ? dst->offset_s : std_offset_s;
}

std::optional<TimeZone> TimeZone::from_tzif(std::string name, std::string_view bytes) {
    auto counts = read_header(bytes, 0);
    if (!counts || counts->type == 0)
        return std::nullopt;
    const char version = bytes[4];
    std::size_t at = kHeaderSize;
    std::size_t time_width = 4;
    if (version != '\0') {
        if (version < '2' || version > '9')
            return std::nullopt;
        const auto skip = block_size(*counts, 4);
        if (bytes.size() < at + skip)
            return std::nullopt;
        at += skip;
        counts = read_header(bytes, at);
        if (!counts || counts->type == 0)
            return std::nullopt;
        at += kHeaderSize;
        time_width = 8;
    }
    if (bytes.size() < at + block_size(*counts, time_width))
        return std::nullopt;

    TimeZone zone;
    zone.name_ = std::move(name);
    const std::size_t indices = at + std::size_t{counts->time} * time_width;
    const std::size_t types = indices + counts->time;
    const auto offset_of_type = [&](std::size_t type) {
        return static_cast<std::int32_t>(read_signed(bytes, types + type * kTypeSize, 4));
    };
    for (std::size_t i = 0; i < counts->time; ++i) {
        const std::int64_t when = read_signed(bytes, at + i * time_width, time_width);
        const auto type = static_cast<unsigned char>(bytes[indices + i]);
        if (type >= counts->type ||
            (!zone.transitions_.empty() && when <= zone.transitions_.back()))
            return std::nullopt;
        zone.transitions_.push_back(when);
        zone.offset_after_.push_back(offset_of_type(type));
    }
    zone.offset_before_ = offset_of_type(0);

    if (time_width == 8) {
        const std::size_t footer = at + block_size(*counts, time_width);
        const auto rest = bytes.substr(footer);
        if (rest.size() >= 2 && rest[0] == '\n') {
            const auto close = rest.find('\n', 1);
            if (close != std::string_view::npos && close > 1)
                zone.after_last_ = PosixZoneRule::parse(rest.substr(1, close - 1));
        }
    }
    return zone;
}

std::int32_t TimeZone::utc_offset_at(std::int64_t utc_s) const {
    if (transitions_.empty() || utc_s >= transitions_.back()) {
        if (after_last_)
            return after_last_->utc_offset_at(utc_s);
        return transitions_.empty() ? offset_before_ : offset_after_.back();
    }
    const auto next = std::upper_bound(transitions_.begin(), transitions_.end(), utc_s);
    if (next == transitions_.begin())
        return offset_before_;
    return offset_after_[static_cast<std::size_t>(next - transitions_.begin()) - 1];
}

bool plausible_zone_name(std::string_view name) {
    if (name.empty() || name.size() > 64 || name.starts_with('/') ||
        name.find("..") != std::string_view::npos)
        return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '/' || c == '_' || c == '-' || c == '+';
    });
}

bool zone_agrees_with_uploads(const TimeZone& zone, std::int64_t utc_s,
                              std::optional<std::int64_t> learned_offset_s) {
    constexpr std::int64_t kTolerance_s = 3600;
    if (!learned_offset_s)
        return true;
    const auto difference =
        static_cast<std::int64_t>(zone.utc_offset_at(utc_s)) - *learned_offset_s;
    return difference <= kTolerance_s && difference >= -kTolerance_s;
}

const TimeZone* zone_giving_day(const TimeZone* zone, std::int64_t utc_s,
                                std::optional<std::int64_t> learned_offset_s) {
    if (!zone || !learned_offset_s || !zone_agrees_with_uploads(*zone, utc_s, learned_offset_s))
        return nullptr;
    return zone;
}

std::optional<std::int64_t> ecu_wall_clock_s(std::int64_t utc_s, const TimeZone* zone,
                                             std::optional<std::int64_t> learned_offset_s) {
    if (zone)
        return utc_s + zone->utc_offset_at(utc_s);
    if (learned_offset_s)
        return utc_s + *learned_offset_s;
    return std::nullopt;
}

} // namespace ecu2mqtt
