#include "ecu2mqtt/core/clock.hpp"

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace ecu2mqtt {
namespace {

std::tm local_tm(std::chrono::system_clock::time_point t) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    localtime_r(&seconds, &tm);
    return tm;
}

} // namespace

std::chrono::system_clock::time_point SystemClock::now() const {
    return std::chrono::system_clock::now();
}

LocalDateTime SystemClock::local(std::chrono::system_clock::time_point t) const {
    const auto tm = local_tm(t);
    return {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec};
}

std::string SystemClock::iso_with_offset(std::chrono::system_clock::time_point t) const {
    const auto tm = local_tm(t);
    const long offset_minutes = tm.tm_gmtoff / 60;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  offset_minutes < 0 ? '-' : '+', std::labs(offset_minutes) / 60,
                  std::labs(offset_minutes) % 60);
    return buf;
}

} // namespace ecu2mqtt
