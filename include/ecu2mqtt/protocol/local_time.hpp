// Calendar arithmetic on the ECU's wall-clock timestamps (local time, no zone attached).
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ecu2mqtt {

struct LocalDateTime {
    int year = 1970;
    int month = 1;
    int day = 1;
    int hour = 0;
    int minute = 0;
    int second = 0;

    auto operator<=>(const LocalDateTime&) const = default;
};

struct LocalDate {
    int year = 1970;
    int month = 1;
    int day = 1;

    auto operator<=>(const LocalDate&) const = default;
};

// Parses `YYYYMMDDhhmmss`; nullopt when not 14 digits or not a real calendar moment.
std::optional<LocalDateTime> parse_compact_timestamp(std::string_view text);
// `YYYYMMDDhhmmss`, the form used on the wire.
std::string format_compact(const LocalDateTime& t);
// `YYYY-MM-DDThh:mm:ss`, ISO 8601 without a zone, as the ECU gives no zone.
std::string format_iso(const LocalDateTime& t);
// The same, appended to `out`.
void append_iso(std::string& out, const LocalDateTime& t);
std::string format_iso(const LocalDate& d);
std::optional<LocalDate> parse_iso_date(std::string_view text);

LocalDateTime add_seconds(const LocalDateTime& t, std::int64_t seconds);
// Seconds since 1970-01-01T00:00:00 of the same (zone-less) wall clock.
std::int64_t to_epoch_seconds(const LocalDateTime& t);
LocalDateTime from_epoch_seconds(std::int64_t seconds);

inline LocalDate date_of(const LocalDateTime& t) {
    return {t.year, t.month, t.day};
}

} // namespace ecu2mqtt
