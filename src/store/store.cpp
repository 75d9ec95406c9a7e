#include "ecu2mqtt/store/store.hpp"

#include "ecu2mqtt/store/pvoutput_queue.hpp"
#include "schema.hpp"

#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace ecu2mqtt {
namespace {

const std::filesystem::path& with_directory(const std::filesystem::path& file) {
    std::error_code ec;
    if (file.has_parent_path())
        std::filesystem::create_directories(file.parent_path(), ec);
    return file;
}

std::optional<std::uintmax_t> free_space_at(const std::filesystem::path& directory) {
    struct statvfs fs {};
    if (::statvfs(directory.c_str(), &fs) != 0)
        return std::nullopt;
    return static_cast<std::uintmax_t>(fs.f_bavail) * fs.f_frsize;
}

std::filesystem::path directory_of(const std::filesystem::path& file) {
    return file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
}

std::string text_of(Statement& statement, int column) {
    return std::string(statement.column_text(column));
}

bool affects_everything(int code) {
    // Out of space, I/O trouble, a lock held elsewhere: the transaction as a whole cannot go on.
    const int primary = code & 0xff;
    return primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_BUSY ||
           primary == SQLITE_LOCKED || primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB ||
           primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN;
}

} // namespace

void WriteBatch::put_reading(std::uint64_t sequence, std::string ecu_id, std::int64_t kept_at_s,
                             std::string messages) {
    ops_.emplace_back(PutReading{sequence, std::move(ecu_id), kept_at_s, std::move(messages)});
}
std::size_t WriteBatch::bytes() const {
    std::size_t total = 0;
    for (const auto& op : ops_)
        std::visit(
            [&total](const auto& o) {
                total += sizeof o;
                if constexpr (requires { o.messages; })
                    total += o.messages.size();
                if constexpr (requires { o.state_json; })
                    total += o.state_json.size();
                if constexpr (requires { o.powers; })
                    total += o.powers.size();
                if constexpr (requires { o.line; })
                    total += o.line.size() + o.why.size();
            },
            op);
    return total;
}

void WriteBatch::drop_reading(std::uint64_t sequence) {
    ops_.emplace_back(DropReading{sequence});
}
void WriteBatch::put_ecu_state(std::string ecu_id, std::string state_json) {
    ops_.emplace_back(PutState{std::move(ecu_id), std::move(state_json)});
}
void WriteBatch::remember_kept(std::string ecu_id, std::string ecu_time, std::string fingerprint,
                               std::size_t keep_newest) {
    ops_.emplace_back(
        RememberKept{std::move(ecu_id), std::move(ecu_time), std::move(fingerprint), keep_newest});
}
void WriteBatch::drop_ecu_state(std::string ecu_id) {
    ops_.emplace_back(DropState{std::move(ecu_id)});
}
void WriteBatch::keep_raw(std::string ecu_id, std::int64_t received_at_s, std::string why,
                          std::string line) {
    ops_.emplace_back(KeepRaw{std::move(ecu_id), received_at_s, std::move(why), std::move(line)});
}
void WriteBatch::add_power_point(PowerPoint point) {
    ops_.emplace_back(std::move(point));
}
void WriteBatch::add_channel_powers(ChannelPowers powers) {
    ops_.emplace_back(std::move(powers));
}
void WriteBatch::prune_history(std::string first_day_kept) {
    ops_.emplace_back(PruneHistory{std::move(first_day_kept)});
}
void WriteBatch::run(std::function<void(Database&)> step) {
    ops_.emplace_back(Run{std::move(step)});
}
// The store thread's connection and statements.
class Store::Writer {
  public:
    Writer(const std::filesystem::path& file, const StoreLimits& limits, const PointHook& hook)
        : limits_(limits), point_hook_(hook), db_(file, Database::Mode::ReadWrite) {
        configure_connection(db_, limits.busy_timeout);
        auto totals = db_.prepare("SELECT count(*), coalesce(sum(length(line)), 0) FROM "
                                  "raw_messages");
        totals.step();
        raw_count_ = static_cast<std::size_t>(totals.column_int(0));
        raw_bytes_ = static_cast<std::uintmax_t>(totals.column_int(1));
    }

    // One transaction for all of them; each batch in a savepoint of its own, so that one bad
    // batch does not sink the others. Returns each batch's error (empty: committed).
    //
    // SQLite folds its write-ahead log into the database only once the log reaches ~4 MB, and the
    // log does not shrink by itself: on a small or nearly full disk it would hold the last free
    // space, and then every write (and that checkpoint itself) fails until a restart. So when a
    // round fails for lack of space the log is checkpointed and emptied, and the round tried
    // again once; and while space is low, that is done after every round.
    std::vector<std::string> commit(std::deque<Submission>& submissions) {
        bool out_of_space = false;
        auto errors = commit_once(submissions, out_of_space);
        if (out_of_space) {
            if (empty_log(limits_.busy_timeout))
                errors = commit_once(submissions, out_of_space);
        } else if (const auto free = free_space_at(directory_of(db_.path()));
                   free && *free < limits_.low_space_bytes) {
            empty_log(std::chrono::milliseconds(0)); // never waits for a reader: next round
        }
        return errors;
    }

  private:
    std::vector<std::string> commit_once(std::deque<Submission>& submissions, bool& out_of_space) {
        out_of_space = false;
        std::vector<std::string> errors(submissions.size());
        const auto raw_count = raw_count_;
        const auto raw_bytes = raw_bytes_;
        try {
            db_.exec("BEGIN IMMEDIATE");
            for (std::size_t i = 0; i < submissions.size(); ++i) {
                db_.exec("SAVEPOINT batch");
                try {
                    for (auto& op : submissions[i].batch.ops_)
                        std::visit([this](auto& o) { apply(o); }, op);
                    db_.exec("RELEASE batch");
                } catch (const DatabaseError& e) {
                    if (affects_everything(e.code()))
                        throw;
                    db_.exec("ROLLBACK TO batch");
                    db_.exec("RELEASE batch");
                    errors[i] = e.what();
                }
            }
            trim_raw();
            db_.exec("COMMIT");
        } catch (const std::exception& e) {
            if (!sqlite3_get_autocommit(db_.handle())) {
                try {
                    db_.exec("ROLLBACK");
                } catch (const DatabaseError&) {
                    // Already rolled back by SQLite itself.
                }
            }
            raw_count_ = raw_count;
            raw_bytes_ = raw_bytes;
            for (auto& error : errors)
                error = e.what();
            const auto* database_error = dynamic_cast<const DatabaseError*>(&e);
            out_of_space = database_error && database_error->out_of_space();
        }
        return errors;
    }

    // Copies the log into the database and truncates it to nothing. False when that could not be
    // done in full (a reader holds an old snapshot, or there is no room even for that).
    bool empty_log(std::chrono::milliseconds wait_for_readers) {
        sqlite3_busy_timeout(db_.handle(), static_cast<int>(wait_for_readers.count()));
        bool emptied = false;
        try {
            checkpoint_.step();
            emptied = checkpoint_.column_int(0) == 0;
            checkpoint_.reset();
        } catch (const DatabaseError&) {
            // Not even the checkpoint has room: the next round tries again.
        }
        sqlite3_busy_timeout(db_.handle(), static_cast<int>(limits_.busy_timeout.count()));
        return emptied;
    }

    void apply(const WriteBatch::PutReading& op) {
        put_reading_.bind(1, static_cast<std::int64_t>(op.sequence))
            .bind(2, op.ecu_id)
            .bind(3, op.kept_at_s)
            .bind_blob(4, op.messages)
            .run();
    }
    void apply(const WriteBatch::DropReading& op) {
        drop_reading_.bind(1, static_cast<std::int64_t>(op.sequence)).run();
    }
    void apply(const WriteBatch::PutState& op) {
        put_state_.bind(1, op.ecu_id).bind(2, op.state_json).run();
    }
    void apply(const WriteBatch::DropState& op) {
        drop_state_.bind(1, op.ecu_id).run();
        drop_kept_.bind(1, op.ecu_id).run();
        drop_channels_.bind(1, op.ecu_id).run();
    }
    void apply(const WriteBatch::RememberKept& op) {
        put_kept_.bind(1, op.ecu_id).bind(2, op.ecu_time).bind(3, op.fingerprint).run();
        trim_kept_.bind(1, op.ecu_id).bind(2, static_cast<std::int64_t>(op.keep_newest)).run();
    }
    void apply(const WriteBatch::KeepRaw& op) {
        keep_raw_.bind(1, op.ecu_id).bind(2, op.received_at_s).bind(3, op.why).bind(4, op.line);
        keep_raw_.run();
        ++raw_count_;
        raw_bytes_ += op.line.size();
    }
    void apply(const PowerPoint& op) {
        put_point_.bind(1, op.ecu_id)
            .bind(2, op.ecu_time)
            .bind(3, op.power_w)
            .bind(4, op.lifetime_kwh)
            .run();
        if (db_.changes() == 0)
            return; // that reading is in already: the day's totals have it
        const std::string_view day = std::string_view(op.ecu_time).substr(0, 10);
        put_day_.bind(1, op.ecu_id).bind(2, day).bind(3, op.lifetime_kwh).bind(4, op.power_w).run();
        if (point_hook_)
            point_hook_(db_, op);
    }
    void apply(const ChannelPowers& op) {
        put_channels_.bind(1, op.ecu_id).bind(2, op.ecu_time).bind(3, op.powers).run();
        trim_channels_.bind(1, op.ecu_id).bind(2, op.ecu_time).run();
    }
    void apply(const WriteBatch::Run& op) { op.step(db_); }
    void apply(const WriteBatch::PruneHistory& op) {
        prune_points_.bind(1, op.first_day_kept).run();
        prune_days_.bind(1, op.first_day_kept).run();
        // What PVOutput took (or refused, or was too old for) goes with the history; a status
        // still waiting stays, whatever its age, until it is sent or expires.
        prune_pvoutput_parts_.bind(1, op.first_day_kept).run();
        prune_pvoutput_statuses_.bind(1, op.first_day_kept).run();
        prune_pvoutput_outputs_.bind(1, op.first_day_kept).run();
    }

    void apply(const AnnouncedDevice& op) {
        put_announced_.bind(1, op.device_id)
            .bind(2, op.ecu_id)
            .bind(3, op.config_topic)
            .bind(4, op.state_topic)
            .bind(5, op.availability_topic)
            .run();
        for (const auto* topic : {&op.config_topic, &op.state_topic, &op.availability_topic})
            drop_clear_.bind(1, *topic).bind(2, std::numeric_limits<std::int64_t>::max()).run();
    }
    void apply(const WriteBatch::DropAnnounced& op) { drop_announced_.bind(1, op.device_id).run(); }
    void apply(const WriteBatch::ClearTopic& op) {
        put_clear_.bind(1, op.clear.topic)
            .bind(2, op.clear.ecu_id)
            .bind(3, static_cast<std::int64_t>(op.clear.readings_up_to))
            .run();
    }
    void apply(const WriteBatch::DropClear& op) {
        drop_clear_.bind(1, op.clear.topic)
            .bind(2, static_cast<std::int64_t>(op.clear.readings_up_to))
            .run();
    }

    void trim_raw() {
        while (raw_count_ > 0 &&
               (raw_count_ > limits_.raw_max_messages || raw_bytes_ > limits_.raw_max_bytes)) {
            if (!drop_oldest_raw_.step())
                break;
            const auto bytes = static_cast<std::uintmax_t>(drop_oldest_raw_.column_int(0));
            drop_oldest_raw_.reset();
            --raw_count_;
            raw_bytes_ -= std::min(bytes, raw_bytes_);
        }
    }

    StoreLimits limits_;
    const PointHook& point_hook_;
    Database db_;
    Statement put_reading_ =
        db_.prepare("INSERT INTO pending_readings(sequence, ecu_id, kept_at, messages) "
                    "VALUES (?, ?, ?, ?)");
    Statement drop_reading_ = db_.prepare("DELETE FROM pending_readings WHERE sequence = ?");
    Statement put_state_ =
        db_.prepare("INSERT OR REPLACE INTO ecu_state(ecu_id, state) VALUES (?, ?)");
    Statement drop_state_ = db_.prepare("DELETE FROM ecu_state WHERE ecu_id = ?");
    Statement drop_kept_ = db_.prepare("DELETE FROM kept_readings WHERE ecu_id = ?");
    Statement put_kept_ = db_.prepare(
        "INSERT OR IGNORE INTO kept_readings(ecu_id, ecu_time, fingerprint) VALUES (?, ?, ?)");
    // Beyond the newest N (by ECU time), the oldest go, as the ledger forgets them.
    Statement trim_kept_ = db_.prepare(
        "DELETE FROM kept_readings WHERE ecu_id = ?1 AND ecu_time < (SELECT ecu_time FROM "
        "kept_readings WHERE ecu_id = ?1 ORDER BY ecu_time DESC LIMIT 1 OFFSET ?2 - 1)");
    Statement drop_channels_ = db_.prepare("DELETE FROM channel_powers WHERE ecu_id = ?");
    Statement put_channels_ = db_.prepare(
        "INSERT OR REPLACE INTO channel_powers(ecu_id, ecu_time, powers) VALUES (?, ?, ?)");
    Statement trim_channels_ =
        db_.prepare("DELETE FROM channel_powers WHERE ecu_id = ?1 AND "
                    "ecu_time < strftime('%Y-%m-%dT%H:%M:%S', ?2, '-1 day')");
    Statement keep_raw_ =
        db_.prepare("INSERT INTO raw_messages(ecu_id, received_at, why, line) VALUES (?, ?, ?, ?)");
    Statement drop_oldest_raw_ =
        db_.prepare("DELETE FROM raw_messages WHERE id = (SELECT min(id) FROM raw_messages) "
                    "RETURNING length(line)");
    Statement put_point_ =
        db_.prepare("INSERT OR IGNORE INTO power_points(ecu_id, ecu_time, power_w, lifetime_kwh) "
                    "VALUES (?, ?, ?, ?)");
    Statement put_day_ = db_.prepare(
        "INSERT INTO daily_energy(ecu_id, day, first_lifetime_kwh, last_lifetime_kwh, "
        "peak_power_w, readings) VALUES (?1, ?2, ?3, ?3, ?4, 1) "
        "ON CONFLICT(ecu_id, day) DO UPDATE SET "
        "first_lifetime_kwh = min(first_lifetime_kwh, excluded.first_lifetime_kwh), "
        "last_lifetime_kwh = max(last_lifetime_kwh, excluded.last_lifetime_kwh), "
        "peak_power_w = max(peak_power_w, excluded.peak_power_w), readings = readings + 1");
    Statement prune_points_ =
        db_.prepare("DELETE FROM power_points WHERE substr(ecu_time, 1, 10) < ?");
    Statement prune_days_ = db_.prepare("DELETE FROM daily_energy WHERE day < ?");
    Statement prune_pvoutput_parts_ =
        db_.prepare("DELETE FROM pvoutput_parts WHERE slot < ?1 AND NOT EXISTS (SELECT 1 FROM "
                    "pvoutput_statuses s WHERE s.system_id = pvoutput_parts.system_id AND s.slot = "
                    "pvoutput_parts.slot AND s.state = 'pending')");
    Statement prune_pvoutput_statuses_ =
        db_.prepare("DELETE FROM pvoutput_statuses WHERE slot < ? AND state != 'pending'");
    Statement prune_pvoutput_outputs_ = db_.prepare("DELETE FROM pvoutput_outputs WHERE day < ?");
    Statement put_announced_ = db_.prepare("INSERT OR REPLACE INTO announced_devices(device_id, "
                                           "ecu_id, config_topic, state_topic, "
                                           "availability_topic) VALUES (?, ?, ?, ?, ?)");
    Statement drop_announced_ = db_.prepare("DELETE FROM announced_devices WHERE device_id = ?");
    // A clear of the topic already pending keeps the higher bound: readings up to either
    // leave the topic out.
    Statement put_clear_ =
        db_.prepare("INSERT INTO pending_clears(topic, ecu_id, readings_up_to) VALUES (?, ?, ?) ON "
                    "CONFLICT(topic) DO UPDATE SET readings_up_to = max(readings_up_to, "
                    "excluded.readings_up_to)");
    Statement drop_clear_ =
        db_.prepare("DELETE FROM pending_clears WHERE topic = ? AND readings_up_to <= ?");
    Statement checkpoint_ = db_.prepare("PRAGMA wal_checkpoint(TRUNCATE)");
    std::size_t raw_count_ = 0;
    std::uintmax_t raw_bytes_ = 0;
};

Store::ExclusiveLock::ExclusiveLock(const std::filesystem::path& database_file) {
    const auto path = with_directory(database_file).string() + ".lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
        throw DatabaseError("cannot create \"" + path + "\": " + std::strerror(errno),
                            SQLITE_CANTOPEN);
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        char holder[32] = {};
        const auto n = ::pread(fd_, holder, sizeof holder - 1, 0);
        ::close(fd_);
        fd_ = -1;
        const std::string pid = n > 0 ? std::string(holder, static_cast<std::size_t>(n)) : "?";
        throw DatabaseError(
            "\"" + database_file.parent_path().string() + "\" is in use by another ecu2mqtt (pid " +
                pid.substr(0, pid.find('\n')) + "); give each service its own --state-dir",
            SQLITE_BUSY);
    }
    const auto pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
        // The pid is only there to name us in another one's message.
    }
}

Store::ExclusiveLock::~ExclusiveLock() {
    if (fd_ >= 0)
        ::close(fd_); // releases the lock
}

Store::Store(const std::filesystem::path& file, StoreLimits limits,
             boost::asio::any_io_executor completions)
    : file_(file), lock_(file), limits_(limits), completions_(std::move(completions)),
      reader_(with_directory(file), Database::Mode::ReadWrite) {
    try {
        create_or_check_schema(reader_, file, limits.busy_timeout);
    } catch (const DatabaseError& e) {
        const std::string what = e.what();
        if (what.find(file.string()) != std::string::npos)
            throw;
        throw DatabaseError("database \"" + file.string() + "\": " + what, e.code());
    }
    auto id = reader_.prepare("SELECT value FROM meta WHERE key = 'database_id'");
    if (id.step())
        database_id_ = text_of(id, 0);
    // Opened here, so that a file the writer cannot use fails the start, not the first upload;
    // from now on only the store's thread uses it.
    writer_connection_ = std::make_unique<Writer>(file_, limits_, point_hook_);
    writer_ = std::thread([this] { run_writer(); });
}

Store::~Store() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    writer_.join();
}

void Store::submit(WriteBatch batch, Done done) {
    const auto bytes = batch.bytes();
    {
        std::lock_guard lock(mutex_);
        if (queued_bytes_ + bytes > limits_.max_queued_bytes && !queue_.empty()) {
            ++stats_.failed_batches;
            const auto error = "the store is behind: " + std::to_string(queued_bytes_ >> 10) +
                               " KiB wait to be written to " + file_.string();
            stats_.failing = true;
            stats_.last_error = error;
            if (done)
                boost::asio::post(completions_, [done = std::move(done), error] { done(error); });
            return;
        }
        queued_bytes_ += bytes;
        queue_.push_back({std::move(batch), std::move(done), bytes});
    }
    wake_.notify_one();
}

void Store::run_writer() {
    for (;;) {
        std::deque<Submission> round;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty())
                return;
            round.swap(queue_);
        }
        std::vector<std::string> errors;
        try {
            errors = writer_connection_->commit(round);
        } catch (
            const std::exception& e) { // out of memory, say: the round fails, the thread goes on
            errors.assign(round.size(), std::string("store: ") + e.what());
        }
        {
            std::lock_guard lock(mutex_);
            for (const auto& submission : round)
                queued_bytes_ -= std::min(submission.bytes, queued_bytes_);
            ++stats_.transactions;
            stats_.batches += round.size();
            // "Writable" means readings can be kept: a small state write that still fits on a
            // full disk does not say so while the readings themselves fail.
            bool failed = false, reading_kept = false;
            for (std::size_t i = 0; i < round.size(); ++i) {
                const bool holds_reading = std::any_of(
                    round[i].batch.ops_.begin(), round[i].batch.ops_.end(), [](const auto& op) {
                        return std::holds_alternative<WriteBatch::PutReading>(op);
                    });
                if (errors[i].empty()) {
                    reading_kept = reading_kept || holds_reading;
                    continue;
                }
                ++stats_.failed_batches;
                if (!failed)
                    stats_.last_error = errors[i];
                failed = true;
                reading_failed_ = reading_failed_ || holds_reading;
            }
            if (failed) {
                stats_.failing = true;
            } else if (reading_kept || !reading_failed_) {
                stats_.failing = false;
                reading_failed_ = false;
            }
        }
        for (std::size_t i = 0; i < round.size(); ++i)
            if (round[i].done)
                boost::asio::post(completions_, [done = std::move(round[i].done),
                                                 error = std::move(errors[i])] { done(error); });
    }
}

std::vector<std::pair<std::string, std::string>> Store::ecu_states() {
    std::vector<std::pair<std::string, std::string>> states;
    auto query = reader_.prepare("SELECT ecu_id, state FROM ecu_state ORDER BY ecu_id");
    while (query.step())
        states.emplace_back(text_of(query, 0), text_of(query, 1));
    return states;
}

std::vector<std::pair<std::string, std::string>> Store::kept_readings(const std::string& ecu_id) {
    std::vector<std::pair<std::string, std::string>> kept;
    auto query = reader_.prepare("SELECT ecu_time, fingerprint FROM kept_readings WHERE ecu_id = ? "
                                 "ORDER BY ecu_time");
    query.bind(1, ecu_id);
    while (query.step())
        kept.emplace_back(text_of(query, 0), text_of(query, 1));
    return kept;
}

std::vector<std::pair<std::string, std::string>> Store::channel_powers(const std::string& ecu_id) {
    std::vector<std::pair<std::string, std::string>> powers;
    auto query = reader_.prepare(
        "SELECT ecu_time, powers FROM channel_powers WHERE ecu_id = ? ORDER BY ecu_time");
    query.bind(1, ecu_id);
    while (query.step())
        powers.emplace_back(text_of(query, 0), text_of(query, 1));
    return powers;
}

std::vector<PendingSummary> Store::pending_summary() {
    std::vector<PendingSummary> summary;
    auto query = reader_.prepare("SELECT sequence, length(messages), kept_at FROM "
                                 "pending_readings ORDER BY sequence");
    while (query.step())
        summary.push_back({static_cast<std::uint64_t>(query.column_int(0)),
                           static_cast<std::size_t>(query.column_int(1)), query.column_int(2)});
    return summary;
}

std::vector<PendingReading> Store::pending_after(std::uint64_t after, std::uint64_t up_to,
                                                 std::size_t limit) {
    std::vector<PendingReading> readings;
    auto query = reader_.prepare("SELECT sequence, ecu_id, kept_at, messages FROM pending_readings "
                                 "WHERE sequence > ? AND sequence <= ? ORDER BY sequence LIMIT ?");
    query.bind(1, static_cast<std::int64_t>(after))
        .bind(2, static_cast<std::int64_t>(up_to))
        .bind(3, static_cast<std::int64_t>(limit));
    while (query.step())
        readings.push_back({static_cast<std::uint64_t>(query.column_int(0)), text_of(query, 1),
                            query.column_int(2), std::string(query.column_blob(3))});
    return readings;
}

std::uint64_t Store::last_sequence() {
    auto query = reader_.prepare(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'pending_readings'), 0),"
        " coalesce((SELECT max(sequence) FROM pending_readings), 0))");
    query.step();
    return static_cast<std::uint64_t>(query.column_int(0));
}

std::size_t Store::raw_messages() {
    auto query = reader_.prepare("SELECT count(*) FROM raw_messages");
    query.step();
    return static_cast<std::size_t>(query.column_int(0));
}

std::optional<std::uintmax_t> Store::free_bytes() const {
    return free_space_at(directory_of(file_));
}

StoreStats Store::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

} // namespace ecu2mqtt
