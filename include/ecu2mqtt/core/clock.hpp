// The service's view of time, injected so that replies, daily resets and timeouts can be tested.
#pragma once

#include "ecu2mqtt/protocol/local_time.hpp"

#include <chrono>
#include <string>

namespace ecu2mqtt {

class Clock {
  public:
    virtual ~Clock() = default;
    virtual std::chrono::system_clock::time_point now() const = 0;
    // Wall time in the configured zone (the TZ environment variable).
    virtual LocalDateTime local(std::chrono::system_clock::time_point t) const = 0;
    // ISO 8601 with the zone offset, e.g. 2024-02-06T11:22:14+01:00.
    virtual std::string iso_with_offset(std::chrono::system_clock::time_point t) const = 0;

    LocalDateTime local_now() const { return local(now()); }
};

class SystemClock final : public Clock {
  public:
    std::chrono::system_clock::time_point now() const override;
    LocalDateTime local(std::chrono::system_clock::time_point t) const override;
    std::string iso_with_offset(std::chrono::system_clock::time_point t) const override;
};

} // namespace ecu2mqtt
