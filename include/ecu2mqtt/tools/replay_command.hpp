// `ecu2mqtt replay`: re-sends a recording (see recorder.hpp) to a running service, one
// connection per message as the ECU does, at the recorded pace divided by `speed`.
#pragma once

#include "ecu2mqtt/app/options.hpp"

#include <ostream>
#include <string>
#include <vector>

namespace ecu2mqtt {

// Prints one line per message and a summary; returns the exit status (1 if any message could
// not be delivered or a file was unreadable).
int run_replay(const std::vector<std::string>& files, const ReplayOptions& options,
               std::ostream& out, std::ostream& err);

} // namespace ecu2mqtt
