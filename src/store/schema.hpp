// The store's file: its tables and their versions, and the settings of every connection to it.
#pragma once

#include "ecu2mqtt/store/database.hpp"

#include <chrono>
#include <filesystem>

namespace ecu2mqtt {

// Busy timeout, full sync, a small page cache: what every connection of the store uses.
void configure_connection(Database& db, std::chrono::milliseconds busy_timeout);

// Configures `db`, then creates the schema in `file`, or checks that the file's is one this
// version reads (DatabaseError naming the file if not).
void create_or_check_schema(Database& db, const std::filesystem::path& file,
                            std::chrono::milliseconds busy_timeout);

} // namespace ecu2mqtt
