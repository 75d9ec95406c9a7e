#include "ecu2mqtt/net/ecu_poller.hpp"

namespace ecu2mqtt {

std::string describe_poll_status(const PollStatus& s,
                                 const std::function<std::string(std::int64_t)>& at) {
    const auto where = "port 8899 at " + s.address;
    if (s.failing_since_unix)
        return where + " not answering since " + at(*s.failing_since_unix) + " (" + s.last_failure +
               ")";
    if (!s.last_success_unix)
        return where + " not polled yet";
    if (!s.step_failing.empty()) {
        const auto colon = s.step_failing.find(": ");
        const auto step = s.step_failing.substr(0, colon);
        const auto why = colon == std::string::npos ? "" : s.step_failing.substr(colon + 2);
        return where + " answers, but " + step + " fails: " + why + " (ECU info answered " +
               at(s.last_success_unix) + ")";
    }
    return where + " answered " + at(s.last_success_unix);
}

} // namespace ecu2mqtt
