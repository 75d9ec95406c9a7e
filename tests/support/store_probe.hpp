// Looks into the service's database from a test, and holds its write lock to make writes fail
// the way another process holding it would.
#pragma once

#include "ecu2mqtt/store/database.hpp"
#include "ecu2mqtt/store/store.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <sqlite3.h>
#include <string>
#include <thread>
#include <vector>

namespace test {

// The first column of the first row (0 when there is none).
inline std::int64_t query_number(const std::filesystem::path& state_dir, const std::string& sql) {
    ecu2mqtt::Database db(ecu2mqtt::Store::file_in(state_dir), ecu2mqtt::Database::Mode::ReadOnly);
    auto query = db.prepare(sql);
    return query.step() ? query.column_int(0) : 0;
}

// Polls query_number until it gives `expected` or `timeout` passes; returns the last value.
// The service writes on its own thread, after it has answered or published.
inline std::int64_t wait_for_number(const std::filesystem::path& state_dir, const std::string& sql,
                                    std::int64_t expected,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto value = query_number(state_dir, sql);
    while (value != expected && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        value = query_number(state_dir, sql);
    }
    return value;
}

// Every row's columns as text.
inline std::vector<std::vector<std::string>> query_rows(const std::filesystem::path& state_dir,
                                                        const std::string& sql, int columns) {
    ecu2mqtt::Database db(ecu2mqtt::Store::file_in(state_dir), ecu2mqtt::Database::Mode::ReadOnly);
    auto query = db.prepare(sql);
    std::vector<std::vector<std::string>> rows;
    while (query.step()) {
        rows.emplace_back();
        for (int c = 0; c < columns; ++c)
            rows.back().emplace_back(query.column_text(c));
    }
    return rows;
}

inline void execute(const std::filesystem::path& state_dir, const std::string& sql) {
    ecu2mqtt::Database db(ecu2mqtt::Store::file_in(state_dir), ecu2mqtt::Database::Mode::ReadWrite);
    db.exec(sql);
}

// Another connection holding the write lock, as a user's sqlite3 shell could.
class DatabaseWriteLock {
  public:
    explicit DatabaseWriteLock(const std::filesystem::path& database_file) {
        REQUIRE(sqlite3_open(database_file.c_str(), &db_) == SQLITE_OK);
        sqlite3_busy_timeout(db_, 10000); // the service may be writing just now
        REQUIRE(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
    }
    ~DatabaseWriteLock() { release(); }
    DatabaseWriteLock(const DatabaseWriteLock&) = delete;
    DatabaseWriteLock& operator=(const DatabaseWriteLock&) = delete;
    void release() {
        if (!db_)
            return;
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        sqlite3_close(db_);
        db_ = nullptr;
    }

  private:
    sqlite3* db_ = nullptr;
};

} // namespace test
