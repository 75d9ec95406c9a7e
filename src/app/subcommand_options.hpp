// The command lines of the subcommands (replay, history, decode); private to options.cpp.
#pragma once

#include "ecu2mqtt/app/options.hpp"

#include <map>
#include <string>
#include <vector>

namespace ecu2mqtt {

CommandLine parse_replay(const std::vector<std::string>& args);
// The state directory is found as the service finds it (flag, then environment, then default),
// so that the export reads the database the service writes.
CommandLine parse_history(const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& environment);
CommandLine parse_decode(const std::vector<std::string>& args);

} // namespace ecu2mqtt
