// A clock that says what the test wants it to say, and can be moved while in use.
#pragma once

#include "ecu2mqtt/core/clock.hpp"

#include <atomic>

namespace test {

class FixedClock final : public ecu2mqtt::Clock {
  public:
    explicit FixedClock(ecu2mqtt::LocalDateTime local)
        : epoch_(ecu2mqtt::to_epoch_seconds(local)) {}
    void set(ecu2mqtt::LocalDateTime local) { epoch_ = ecu2mqtt::to_epoch_seconds(local); }

    std::chrono::system_clock::time_point now() const override {
        return std::chrono::system_clock::time_point(std::chrono::seconds(epoch_.load()));
    }
    ecu2mqtt::LocalDateTime local(std::chrono::system_clock::time_point) const override {
        return ecu2mqtt::from_epoch_seconds(epoch_.load());
    }
    std::string iso_with_offset(std::chrono::system_clock::time_point) const override {
        return ecu2mqtt::format_iso(ecu2mqtt::from_epoch_seconds(epoch_.load())) + "+00:00";
    }

  private:
    std::atomic<std::int64_t> epoch_;
};

} // namespace test
