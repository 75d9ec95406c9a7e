#include "ecu2mqtt/store/database.hpp"

#include <cerrno>
#include <sqlite3.h>
#include <utility>

namespace ecu2mqtt {
namespace {

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what) {
    std::string message(what);
    message += ": ";
    message += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    throw DatabaseError(message, db ? sqlite3_extended_errcode(db) : rc,
                        db ? sqlite3_system_errno(db) : 0);
}

int length_of(std::string_view bytes) {
    return static_cast<int>(bytes.size());
}

} // namespace

bool DatabaseError::held_elsewhere() const {
    const int primary = code_ & 0xff;
    return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

bool DatabaseError::out_of_space() const {
    const int primary = code_ & 0xff;
    return primary == SQLITE_FULL ||
           (primary == SQLITE_IOERR && (system_errno_ == ENOSPC || system_errno_ == EDQUOT));
}

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db) {
    const int rc = sqlite3_prepare_v3(db, sql.data(), length_of(sql), SQLITE_PREPARE_PERSISTENT,
                                      &statement_, nullptr);
    if (rc != SQLITE_OK)
        fail(db, rc, "cannot prepare \"" + std::string(sql) + "\"");
}

Statement::~Statement() {
    sqlite3_finalize(statement_);
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), statement_(std::exchange(other.statement_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
    if (this != &other) {
        sqlite3_finalize(statement_);
        db_ = other.db_;
        statement_ = std::exchange(other.statement_, nullptr);
    }
    return *this;
}

void Statement::check(int rc, std::string_view what) const {
    if (rc != SQLITE_OK)
        fail(db_, rc, std::string(what) + " in \"" + sqlite3_sql(statement_) + "\"");
}

Statement& Statement::bind(int index, std::int64_t value) {
    check(sqlite3_bind_int64(statement_, index, value), "bind");
    return *this;
}

Statement& Statement::bind(int index, double value) {
    check(sqlite3_bind_double(statement_, index, value), "bind");
    return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
    check(sqlite3_bind_text(statement_, index, text.data(), length_of(text), SQLITE_TRANSIENT),
          "bind");
    return *this;
}

Statement& Statement::bind_blob(int index, std::string_view bytes) {
    check(sqlite3_bind_blob(statement_, index, bytes.data(), length_of(bytes), SQLITE_TRANSIENT),
          "bind");
    return *this;
}

Statement& Statement::bind_null(int index) {
    check(sqlite3_bind_null(statement_, index), "bind");
    return *this;
}

bool Statement::step() {
    const int rc = sqlite3_step(statement_);
    if (rc == SQLITE_ROW)
        return true;
    if (rc == SQLITE_DONE)
        return false;
    const std::string sql = sqlite3_sql(statement_);
    sqlite3_reset(statement_);
    fail(db_, rc, "\"" + sql + "\" failed");
}

void Statement::run() {
    while (step()) {
    }
    reset();
}

void Statement::reset() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
}

std::int64_t Statement::column_int(int index) const {
    return sqlite3_column_int64(statement_, index);
}

double Statement::column_double(int index) const {
    return sqlite3_column_double(statement_, index);
}

bool Statement::column_is_null(int index) const {
    return sqlite3_column_type(statement_, index) == SQLITE_NULL;
}

std::string_view Statement::column_text(int index) const {
    const auto* text = sqlite3_column_text(statement_, index);
    const int bytes = sqlite3_column_bytes(statement_, index);
    return text ? std::string_view(reinterpret_cast<const char*>(text),
                                   static_cast<std::size_t>(bytes))
                : std::string_view();
}

std::string_view Statement::column_blob(int index) const {
    const void* data = sqlite3_column_blob(statement_, index);
    const int bytes = sqlite3_column_bytes(statement_, index);
    return data ? std::string_view(static_cast<const char*>(data), static_cast<std::size_t>(bytes))
                : std::string_view();
}

Database::Database(const std::filesystem::path& path, Mode mode) : path_(path) {
    const int flags =
        mode == Mode::ReadOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        std::string message = "cannot open database \"" + path.string() + "\": ";
        message += db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        const int code = db_ ? sqlite3_extended_errcode(db_) : rc;
        sqlite3_close_v2(db_);
        throw DatabaseError(message, code);
    }
    sqlite3_extended_result_codes(db_, 1);
}

Database::~Database() {
    sqlite3_close_v2(db_);
}

void Database::exec(std::string_view sql) {
    const std::string text(sql);
    char* error = nullptr;
    const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
    if (rc != SQLITE_OK) {
        const std::string message = "\"" + text + "\" failed: " + (error ? error : "?");
        sqlite3_free(error);
        throw DatabaseError(message, sqlite3_extended_errcode(db_), sqlite3_system_errno(db_));
    }
}

Statement Database::prepare(std::string_view sql) {
    return Statement(db_, sql);
}

int Database::changes() const {
    return sqlite3_changes(db_);
}

} // namespace ecu2mqtt
