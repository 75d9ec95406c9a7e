// A clock that says what the test wants it to say.
#pragma once

#include "ecu2mqtt/clock.hpp"

namespace test {

class FixedClock final : public ecu2mqtt::Clock {
  public:
    explicit FixedClock(ecu2mqtt::LocalDateTime local) : local_(local) {}
    std::chrono::system_clock::time_point now() const override {
        return std::chrono::system_clock::time_point(std::chrono::seconds(ecu2mqtt::to_epoch_seconds(local_)));
    }
    ecu2mqtt::LocalDateTime local(std::chrono::system_clock::time_point) const override { return local_; }
    std::string iso_with_offset(std::chrono::system_clock::time_point) const override {
        return ecu2mqtt::format_iso(local_) + "+00:00";
    }

  private:
    ecu2mqtt::LocalDateTime local_;
};

} // namespace test
