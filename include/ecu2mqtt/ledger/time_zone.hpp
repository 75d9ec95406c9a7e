// A named time zone's UTC offset at any instant, from the bytes of its TZif file. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ecu2mqtt {

// The POSIX TZ rule at the end of a TZif file (`CET-1CEST,M3.5.0,M10.5.0/3`): what holds after
// the last listed transition. Only the `Mm.w.d` form of dates, the one tzdata writes.
struct PosixZoneRule {
    std::int32_t std_offset_s = 0; // east of UTC
    struct Change {
        int month = 1;
        int week = 1; // 5: the last
        int weekday = 0;
        std::int32_t time_s = 7200; // local time of the change
    };
    struct Dst {
        std::int32_t offset_s = 0;
        Change start, end;
    };
    std::optional<Dst> dst;

    static std::optional<PosixZoneRule> parse(std::string_view text);
    std::int32_t utc_offset_at(std::int64_t utc_s) const;
};

class TimeZone {
  public:
    // Nullopt when the bytes are no well-formed TZif file (versions 1 to 4).
    static std::optional<TimeZone> from_tzif(std::string name, std::string_view bytes);

    const std::string& name() const { return name_; }
    // Seconds east of UTC at `utc_s` (seconds since the Unix epoch).
    std::int32_t utc_offset_at(std::int64_t utc_s) const;

  private:
    std::string name_;
    std::vector<std::int64_t> transitions_;   // sorted
    std::vector<std::int32_t> offset_after_;  // in force from the transition of the same index
    std::int32_t offset_before_ = 0;          // before the first transition
    std::optional<PosixZoneRule> after_last_; // after the last transition
};

// A name as tzdata spells them (`Europe/Amsterdam`, `Etc/GMT-8`), safe to look up under a
// zoneinfo folder: no `..`, no leading `/`, only letters, digits and `/_-+`.
bool plausible_zone_name(std::string_view name);

// Whether a polled zone can be the ECU's: its offset now is within an hour of the offset learned
// from the ECU's uploads (when one is). A zone that disagrees (a spoofed or changed answer, or an
// ECU whose clock is far off) would move the ECU's day, and reset today's energy mid-day.
bool zone_agrees_with_uploads(const TimeZone& zone, std::int64_t utc_s,
                              std::optional<std::int64_t> learned_offset_s);

// `zone` when it may give the ECU's day at `utc_s`: only while the offset learned from its
// uploads agrees with it. An ECU whose clock gave no offset (implausibly far off) keeps
// following its upload dates, and a zone its own clock contradicts (spoofed, changed, or a clock
// set to another zone) moves no midnight.
const TimeZone* zone_giving_day(const TimeZone* zone, std::int64_t utc_s,
                                std::optional<std::int64_t> learned_offset_s);

// The ECU's wall clock at `utc_s`: its time zone's when known, else host time + the offset
// learned from its uploads, else unknown.
std::optional<std::int64_t> ecu_wall_clock_s(std::int64_t utc_s, const TimeZone* zone,
                                             std::optional<std::int64_t> learned_offset_s);

} // namespace ecu2mqtt
