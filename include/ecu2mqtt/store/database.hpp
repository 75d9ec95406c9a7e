// A thin RAII layer over one SQLite connection: open, run SQL, prepared statements. Errors are
// thrown as DatabaseError with SQLite's own message and the statement that failed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace ecu2mqtt {

class DatabaseError : public std::runtime_error {
  public:
    DatabaseError(const std::string& what, int code, int system_errno = 0)
        : std::runtime_error(what), code_(code), system_errno_(system_errno) {}
    // SQLite's extended result code (SQLITE_FULL, SQLITE_BUSY, …).
    int code() const { return code_; }
    // The file is locked by another connection or program (SQLITE_BUSY, SQLITE_LOCKED).
    bool held_elsewhere() const;
    // The disk (or the user's quota) is full: SQLITE_FULL, or an I/O error with ENOSPC.
    bool out_of_space() const;

  private:
    int code_;
    int system_errno_; // the OS error behind an I/O failure, 0 when none or unknown
};

class Statement {
  public:
    Statement(sqlite3* db, std::string_view sql);
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    Statement(Statement&& other) noexcept;
    Statement& operator=(Statement&& other) noexcept;

    // Parameters are numbered from 1, as in SQL's `?`. Text and blobs are copied by SQLite.
    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, double value);
    Statement& bind(int index, std::string_view text);
    Statement& bind_blob(int index, std::string_view bytes);
    Statement& bind_null(int index);

    // True while there is a row to read; false once done. Throws on error.
    bool step();
    // Runs a statement that returns no rows, then resets it for the next use.
    void run();
    // Clears bindings and rewinds, keeping the compiled statement.
    void reset();

    std::int64_t column_int(int index) const;
    double column_double(int index) const;
    bool column_is_null(int index) const;
    // Valid until the next step() or reset().
    std::string_view column_text(int index) const;
    std::string_view column_blob(int index) const;

  private:
    void check(int rc, std::string_view what) const;
    sqlite3* db_ = nullptr;
    sqlite3_stmt* statement_ = nullptr;
};

class Database {
  public:
    enum class Mode { ReadWrite, ReadOnly };
    // Creates the file when writing and it is missing. Throws DatabaseError naming the path.
    Database(const std::filesystem::path& path, Mode mode);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    void exec(std::string_view sql);
    Statement prepare(std::string_view sql);
    // Rows changed by the last INSERT, UPDATE or DELETE.
    int changes() const;
    sqlite3* handle() const { return db_; }
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
    sqlite3* db_ = nullptr;
};

} // namespace ecu2mqtt
