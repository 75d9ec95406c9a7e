// `ecu2mqtt decode`: captured messages in, one JSON object per message out (JSON Lines).
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

namespace ecu2mqtt {

// Decodes every message of every file ("-" or no file: `in`). Errors go to `err` with the file
// and byte offset; the other messages are still decoded. Returns the process exit status.
int run_decode(const std::vector<std::string>& files, std::istream& in, std::ostream& out,
               std::ostream& err);

} // namespace ecu2mqtt
