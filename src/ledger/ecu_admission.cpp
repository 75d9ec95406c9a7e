#include "ecu2mqtt/ledger/ecu_admission.hpp"

#include <algorithm>
#include <tuple>

namespace ecu2mqtt {

bool established(std::size_t kept_readings) {
    return kept_readings >= kEstablishedAfter;
}

bool may_be_evicted(const TrackedEcu& ecu) {
    return !established(ecu.kept_readings) && !ecu.online && !ecu.busy;
}

namespace {

Admission evicting(std::size_t tracked_count, std::vector<const TrackedEcu*> evictable,
                   std::size_t max_ecus) {
    const std::size_t needed = tracked_count - max_ecus + 1;
    if (evictable.size() < needed)
        return {false, {}};
    // Heard longest ago first; the id breaks ties, so that the caller's order does not matter.
    std::partial_sort(evictable.begin(), evictable.begin() + static_cast<std::ptrdiff_t>(needed),
                      evictable.end(), [](const TrackedEcu* a, const TrackedEcu* b) {
                          return std::tie(a->last_heard_s, a->id) <
                                 std::tie(b->last_heard_s, b->id);
                      });
    Admission admission{true, {}};
    for (std::size_t i = 0; i < needed; ++i)
        admission.evict.push_back(evictable[i]->id);
    return admission;
}

} // namespace

Admission admit_new_ecu(std::span<const TrackedEcu> tracked, std::size_t max_ecus) {
    if (tracked.size() < max_ecus)
        return {true, {}};
    std::vector<const TrackedEcu*> candidates;
    for (const auto& ecu : tracked)
        if (may_be_evicted(ecu))
            candidates.push_back(&ecu);
    return evicting(tracked.size(), std::move(candidates), max_ecus);
}

Admission admit_new_ecu(std::size_t tracked_count, std::span<const TrackedEcu> evictable,
                        std::size_t max_ecus) {
    if (tracked_count < max_ecus)
        return {true, {}};
    std::vector<const TrackedEcu*> candidates;
    candidates.reserve(evictable.size());
    for (const auto& ecu : evictable)
        candidates.push_back(&ecu);
    return evicting(tracked_count, std::move(candidates), max_ecus);
}

WarningBudget::WarningBudget(std::size_t per_window, std::chrono::seconds window)
    : per_window_(per_window), window_(window) {}

std::optional<std::uint64_t> WarningBudget::allow(TimePoint now) {
    if (!window_start_ || now < *window_start_ || now - *window_start_ >= window_) {
        window_start_ = now;
        used_ = 0;
    }
    if (used_ >= per_window_) {
        ++left_out_;
        return std::nullopt;
    }
    ++used_;
    const auto left_out = left_out_;
    left_out_ = 0;
    return left_out;
}

} // namespace ecu2mqtt
