// Everything the service keeps across restarts, in one SQLite database in the state directory:
// readings the broker has not acknowledged yet, each ECU's ledger, raw messages kept for a later
// version to decode, the history (power every five minutes, energy per day), and the devices
// announced to Home Assistant with the clears of them the broker has not acknowledged yet.
//
// WAL journal, synchronous=FULL: a transaction that returned is on disk. Writes run on the
// store's own thread and are grouped: whatever is submitted while a transaction is being written
// goes into the next one (group commit), so a burst of uploads costs one fsync per round, not
// one per upload. Each submitter learns the outcome of its own batch on the executor it gave.
// Reads run on the caller's thread through a second connection; WAL lets them go on while the
// writer writes.
#pragma once

#include "ecu2mqtt/store/database.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace ecu2mqtt {

// One reading of the power curve: the ECU's own timestamp ("YYYY-MM-DDThh:mm:ss", its local
// time) with its power and lifetime counter.
struct PowerPoint {
    std::string ecu_id;
    std::string ecu_time;
    double power_w = 0;
    double lifetime_kwh = 0;
};

// The DC power of each channel of one live upload, for the weak-panel hint: `ecu_time` as in
// PowerPoint, `powers` as the hint encodes them. Only the newest day of each ECU is kept.
struct ChannelPowers {
    std::string ecu_id;
    std::string ecu_time;
    std::string powers;
};

struct PendingReading {
    std::uint64_t sequence = 0;
    std::string ecu_id;
    std::int64_t kept_at_s = 0; // host time, seconds since the Unix epoch
    std::string messages;       // as the publisher encoded them
};

struct PendingSummary {
    std::uint64_t sequence = 0;
    std::size_t bytes = 0;
    std::int64_t kept_at_s = 0;
};

// A device the service announced to Home Assistant (an ECU, or an inverter of it), with the
// retained topics it published for it, as they were named then.
struct AnnouncedDevice {
    std::string device_id; // ECU id or inverter UID
    std::string ecu_id;
    std::string config_topic;
    std::string state_topic;
    std::string availability_topic;
    bool operator==(const AnnouncedDevice&) const = default;
};

// A retained topic to clear (an empty retained message), kept until the broker acknowledged
// it and no stored reading up to `readings_up_to`, which may still name the topic, is left.
struct PendingClear {
    std::string topic;
    std::string ecu_id;
    std::uint64_t readings_up_to = 0;
};

// What one transaction does; built on the io thread, applied on the store's thread.
class WriteBatch {
  public:
    void put_reading(std::uint64_t sequence, std::string ecu_id, std::int64_t kept_at_s,
                     std::string messages);
    void drop_reading(std::uint64_t sequence);
    void put_ecu_state(std::string ecu_id, std::string state_json);
    // Also forgets its kept readings.
    void drop_ecu_state(std::string ecu_id);
    // One more kept reading of an ECU (its time and content fingerprint, as the ledger writes
    // them); only the newest `keep_newest` are kept.
    void remember_kept(std::string ecu_id, std::string ecu_time, std::string fingerprint,
                       std::size_t keep_newest);
    void keep_raw(std::string ecu_id, std::int64_t received_at_s, std::string why,
                  std::string line);
    void add_power_point(PowerPoint point);
    // Also forgets the ECU's channel powers more than a day older than this one.
    void add_channel_powers(ChannelPowers powers);
    // Forgets power points and daily totals of days before `first_day_kept` ("YYYY-MM-DD").
    void prune_history(std::string first_day_kept);
    // The device is announced (again): recorded, and any clear of its topics is dropped.
    void announce_device(AnnouncedDevice device);
    // The device is no longer announced (its topics are cleared with clear_topic).
    void drop_announced(std::string device_id);
    void clear_topic(PendingClear clear);
    // The clear is at the broker: dropped, unless a later one (higher `readings_up_to`) took its
    // place.
    void drop_clear(PendingClear clear);
    // A step of another module's tables (the PVOutput queue), in this batch's transaction.
    void run(std::function<void(Database&)> step);

    bool empty() const { return ops_.empty(); }
    // What the batch holds in text and blobs, roughly its size in memory.
    std::size_t bytes() const;
    std::size_t size() const { return ops_.size(); }

  private:
    friend class Store;
    struct PutReading {
        std::uint64_t sequence;
        std::string ecu_id;
        std::int64_t kept_at_s;
        std::string messages;
    };
    struct DropReading {
        std::uint64_t sequence;
    };
    struct PutState {
        std::string ecu_id;
        std::string state_json;
    };
    struct DropState {
        std::string ecu_id;
    };
    struct RememberKept {
        std::string ecu_id;
        std::string ecu_time;
        std::string fingerprint;
        std::size_t keep_newest;
    };
    struct KeepRaw {
        std::string ecu_id;
        std::int64_t received_at_s;
        std::string why;
        std::string line;
    };
    struct PruneHistory {
        std::string first_day_kept;
    };
    struct DropAnnounced {
        std::string device_id;
    };
    struct ClearTopic {
        PendingClear clear;
    };
    struct DropClear {
        PendingClear clear;
    };
    struct Run {
        std::function<void(Database&)> step;
    };
    using Op = std::variant<PutReading, DropReading, PutState, DropState, RememberKept, KeepRaw,
                            PowerPoint, ChannelPowers, PruneHistory, AnnouncedDevice, DropAnnounced,
                            ClearTopic, DropClear, Run>;
    std::vector<Op> ops_;
};

struct StoreLimits {
    // Raw messages kept, at most; past either bound the oldest go first.
    std::size_t raw_max_messages = 1000;
    std::uintmax_t raw_max_bytes = 16 << 20;
    // How long a write waits for a lock held by another process (a user's sqlite3 shell, say)
    // before its batch fails.
    std::chrono::milliseconds busy_timeout{2000};
    // Bytes submitted and not yet written, at most: past it a batch fails at once ("the store
    // is behind"), so that a flood or a slow disk cannot fill memory.
    std::size_t max_queued_bytes = 16 << 20;
    // Below this much free space where the database is, the write-ahead log is folded into the
    // database and emptied after every write (so that it never holds space a later write or
    // checkpoint needs), and the status page warns.
    std::uintmax_t low_space_bytes = 64 << 20;
};

struct StoreStats {
    std::uint64_t transactions = 0; // fsyncs, in effect
    std::uint64_t batches = 0;      // submissions they carried
    std::uint64_t failed_batches = 0;
    // The latest round, or a submission refused because the queue was full, failed: what is
    // submitted now is not kept either, most likely (a full disk, a lock held elsewhere).
    bool failing = false;
    std::string last_error; // of the latest failure, kept after writing works again
};

class Store {
  public:
    static constexpr int kSchemaVersion = 4;
    static std::filesystem::path file_in(const std::filesystem::path& state_dir) {
        return state_dir / "ecu2mqtt.db";
    }

    // Opens (creating it and its directory when missing) and checks the schema version. Throws
    // DatabaseError when the file cannot be used, naming it and why, and when another store (in
    // this process or another) has it open: two services on one state directory would number
    // their readings alike and delete each other's.
    Store(const std::filesystem::path& file, StoreLimits limits,
          boost::asio::any_io_executor completions);
    // Commits what was submitted, then stops the store's thread.
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // `done` gets an empty string once the batch is committed, or why it is not. It runs on the
    // executor given to the constructor, in submission order.
    using Done = std::function<void(const std::string& error)>;
    void submit(WriteBatch batch, Done done = {});
    // Runs on the store's thread after each new power point, in its transaction (the PVOutput
    // queue). Set before the first submit.
    using PointHook = std::function<void(Database&, const PowerPoint&)>;
    void set_power_point_hook(PointHook hook) { point_hook_ = std::move(hook); }

    // Reads (caller's thread).
    // A random id made with the database: tells this database from one made later in its place.
    const std::string& database_id() const { return database_id_; }
    const std::filesystem::path& file() const { return file_; }
    std::vector<std::pair<std::string, std::string>> ecu_states(); // ecu id, state JSON
    // An ECU's kept readings (ECU time, fingerprint), oldest first.
    std::vector<std::pair<std::string, std::string>> kept_readings(const std::string& ecu_id);
    // An ECU's channel powers (ECU time, powers), oldest first.
    std::vector<std::pair<std::string, std::string>> channel_powers(const std::string& ecu_id);
    std::vector<PendingSummary> pending_summary(); // oldest first
    // Readings with `after` < sequence <= `up_to`, oldest first, at most `limit`.
    std::vector<PendingReading> pending_after(std::uint64_t after, std::uint64_t up_to,
                                              std::size_t limit);
    // The highest sequence ever given to a reading (0 for none), even if it is gone since.
    std::uint64_t last_sequence();
    std::size_t raw_messages();
    std::vector<AnnouncedDevice> announced_devices();
    std::vector<PendingClear> pending_clears();
    // Free space (for an unprivileged writer) on the database's file system; none when unknown.
    std::optional<std::uintmax_t> free_bytes() const;
    const StoreLimits& limits() const { return limits_; }

    StoreStats stats() const;

  private:
    struct Submission {
        WriteBatch batch;
        Done done;
        std::size_t bytes = 0;
    };
    class Writer;
    void run_writer();

    // Held for the store's lifetime: an exclusive flock on `<file>.lock`, with our pid in it.
    class ExclusiveLock {
      public:
        explicit ExclusiveLock(const std::filesystem::path& database_file);
        ~ExclusiveLock();
        ExclusiveLock(const ExclusiveLock&) = delete;
        ExclusiveLock& operator=(const ExclusiveLock&) = delete;

      private:
        int fd_ = -1;
    };

    std::filesystem::path file_;
    ExclusiveLock lock_;
    StoreLimits limits_;
    boost::asio::any_io_executor completions_;
    Database reader_;
    std::string database_id_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Submission> queue_;
    std::size_t queued_bytes_ = 0;
    bool stopping_ = false;
    StoreStats stats_;
    bool reading_failed_ = false; // the last failure was of a batch keeping a reading
    PointHook point_hook_;
    std::unique_ptr<Writer> writer_connection_;
    std::thread writer_;
};

} // namespace ecu2mqtt
