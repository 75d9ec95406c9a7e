// Which ECU may take a slot once --max-ecus is reached, and how often a refusal is logged.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ecu2mqtt {

// Pure: no I/O and no clock reads. A flood of made-up ids must not push out a real ECU that is
// merely quiet (at night, or while its network is down). Rules:
//  - an ECU with kEstablishedAfter readings kept (distinct readings, live or re-sent) has a
//    history of uploads: it is never evicted to make room for a new id;
//  - only an ECU below that, offline and not in the middle of a write may be evicted, the one
//    heard longest ago first;
//  - when there is none, the new id is refused (answered, not tracked), and nothing is evicted.
// A new id has no history, so an established ECU keeps its slot until it is forgotten after
// --forget-inverters-after of silence; a real ECU that comes back before then is accepted.
inline constexpr std::size_t kEstablishedAfter = 3;

bool established(std::size_t kept_readings);

// What the admission needs to know of one tracked ECU.
struct TrackedEcu {
    std::string id;
    std::size_t kept_readings = 0;
    bool online = false;
    bool busy = false; // an upload of it is being written or waits: its state must stay
    std::int64_t last_heard_s = 0;
};

struct Admission {
    bool admitted = false;
    // To forget first, when admitted at the limit: one, or more when more than `max_ecus` are
    // tracked (the limit was lowered since they were kept). Empty when refused.
    std::vector<std::string> evict;
};

// For an id not tracked yet.
Admission admit_new_ecu(std::span<const TrackedEcu> tracked, std::size_t max_ecus);
// The same from how many are tracked and only those of them that may be evicted (not
// established, offline, not busy), so that a caller below the cap describes none of its ECUs.
Admission admit_new_ecu(std::size_t tracked_count, std::span<const TrackedEcu> evictable,
                        std::size_t max_ecus);

// Whether `ecu` may be evicted for a new id.
bool may_be_evicted(const TrackedEcu& ecu);

// At most `per_window` warnings in each window of `window`; the rest are counted and the next
// warning says how many were left out.
class WarningBudget {
  public:
    using TimePoint = std::chrono::system_clock::time_point;

    WarningBudget(std::size_t per_window, std::chrono::seconds window);

    // nullopt: stay quiet. Otherwise warn, with how many were left out since the last warning.
    std::optional<std::uint64_t> allow(TimePoint now);

  private:
    std::size_t per_window_;
    std::chrono::seconds window_;
    std::optional<TimePoint> window_start_;
    std::size_t used_ = 0;
    std::uint64_t left_out_ = 0;
};

} // namespace ecu2mqtt
