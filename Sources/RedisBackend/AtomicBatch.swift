import Broker

/// How ``RedisBroker/execute(_:atomically:)`` applies a batch all-or-nothing in one round trip.
///
/// Redis `MULTI`/`EXEC` is isolated but does not roll back: a `WRONGTYPE` in the middle of a
/// transaction leaves the commands before it applied. The Broker contract wants none applied,
/// so an atomic batch runs as this Lua script (scripts are atomic in Redis: nobody sees a
/// state in between). The script
///
/// 1. simulates the key types the batch goes through (`TYPE` once per key, then the effect of
///    each command) and returns the error at once, before applying anything, when a command
///    certainly fails (a list command on a string, …);
/// 2. marks the commands whose success it cannot decide in advance (an `INCRBY` on a string of
///    unknown content, a `GET` on a list the batch may have emptied) and snapshots, with `DUMP`
///    and `PTTL`, only the keys written before the last such command;
/// 3. runs the commands with `redis.pcall`; if one fails, restores the snapshots (`RESTORE`)
///    and returns its error (the first in order, as Redis would report it). `PUBLISH`es run
///    last, once nothing can fail any more, since a message cannot be taken back.
///
/// The common batches (store a record and queue its id; append, trim and expire a list) need
/// none of that: only a list command on a key holding something else can fail in them. When
/// ``keysToCheck(_:)`` finds so, the batch runs as ``leanScript``, which checks those keys'
/// types, then runs the commands. The full script's interpretation costs about 8 µs of Redis
/// CPU more per call (13.4 against 4.9 µs for a record and its queued id, Redis 7.0).
///
/// Inside an optimistic transaction the same scripts run between `MULTI` and `EXEC`, so
/// `WATCH` still decides whether they run at all.
/// Lua numbers are doubles, so an `INCRBY` result is returned as its decimal text and turned
/// back into an integer by ``replies(_:for:)``.
enum AtomicBatch {
    /// The script's replies as each command's ``Reply``.
    static func replies(_ replies: [Reply], for commands: [BrokerCommand]) throws -> [Reply] {
        try zip(replies, commands).map { reply, command in
            guard case .increment = command, case .value(let text) = reply else { return reply }
            guard let value = Int64(String(decoding: text, as: UTF8.self)) else {
                throw BrokerError(.unexpectedReply, "redis: INCRBY in a batch answered \(reply)")
            }
            return .integer(value)
        }
    }

    /// The script's SHA-1s on the server, once loaded.
    struct Hashes: Sendable {
        var full: String
        var lean: String
    }

    /// The keys that list commands in `commands` need to be lists (or absent), when that is
    /// all that can make the batch fail; `nil` when it needs the full script.
    ///
    /// Once those keys are lists or absent, no command here can fail: `SET` (its arguments
    /// checked when encoded), `DEL`, `PEXPIRE`, `PTTL` and `PUBLISH` take any key, and the list
    /// commands cannot turn a key into anything but a list or nothing. A `SET` on one of the
    /// checked keys could, so it sends the batch to the full script; `GET`, `INCRBY` and
    /// `LMOVE` do too (their success may depend on what the batch did before them).
    static func keysToCheck(_ commands: [BrokerCommand]) -> [String]? {
        // Sets, not array scans: a router batch holds the list keys of up to ~128 users.
        var lists: [String] = []
        var seen: Set<String> = []
        var strings: [String] = []
        for command in commands {
            switch command {
            case .push(_, _, let queue), .pop(_, let queue), .remove(_, _, let queue), .length(let queue),
                .range(let queue, _, _), .trim(let queue, _, _):
                if seen.insert(queue).inserted { lists.append(queue) }
            case .set(let key, _, _, _):
                strings.append(key)
            case .delete, .expire, .timeToLive, .publish:
                break
            case .get, .increment, .move:
                return nil
            }
        }
        for key in strings where seen.contains(key) { return nil }
        return lists
    }

    /// Runs a batch that ``keysToCheck(_:)`` accepted. Arguments: the number of keys to check,
    /// the keys, then the commands as for ``script``. Returns `WRONGTYPE` having applied
    /// nothing when a checked key holds anything but a list; else every command's reply.
    static let leanScript = #"""
        local k = tonumber(ARGV[1])
        for i = 2, k + 1 do
          local t = redis.call('TYPE', ARGV[i]).ok
          if t ~= 'list' and t ~= 'none' then
            return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
          end
        end
        local pos = k + 2
        local n = tonumber(ARGV[pos])
        pos = pos + 1
        local replies = {}
        for c = 1, n do
          local argc = tonumber(ARGV[pos])
          replies[c] = redis.call(unpack(ARGV, pos + 1, pos + argc))
          pos = pos + argc + 1
        end
        return replies
        """#

    static let script = #"""
        local n = tonumber(ARGV[1])
        local cmds = {}
        local pos = 2
        for c = 1, n do
          local argc = tonumber(ARGV[pos])
          local cmd = {}
          for a = 1, argc do cmd[a] = ARGV[pos + a] end
          pos = pos + argc + 1
          cmds[c] = cmd
        end
        local wrongtype = 'WRONGTYPE Operation against a key holding the wrong kind of value'
        local sim = {}
        local function typeof(key)
          local t = sim[key]
          if t == nil then t = redis.call('TYPE', key).ok; sim[key] = t end
          return t
        end
        local lastRisky = 0
        local failed = false
        local function needList(c, key)
          local t = typeof(key)
          if t == 'unknown' then lastRisky = c
          elseif t ~= 'list' and t ~= 'none' and t ~= 'listornone' then failed = true end
        end
        local function needString(c, key, content)
          local t = typeof(key)
          if t == 'unknown' or t == 'listornone' or (content and t == 'string') then lastRisky = c
          elseif t ~= 'string' and t ~= 'none' then failed = true end
        end
        local function shrink(key)
          if sim[key] == 'list' then sim[key] = 'listornone' end
        end
        for c, cmd in ipairs(cmds) do
          local name, key = cmd[1], cmd[2]
          if name == 'LPUSH' or name == 'RPUSH' then
            needList(c, key); sim[key] = 'list'
          elseif name == 'LPOP' or name == 'RPOP' or name == 'LREM' or name == 'LTRIM' then
            needList(c, key); shrink(key)
          elseif name == 'LLEN' or name == 'LRANGE' then
            needList(c, key)
          elseif name == 'LMOVE' then
            needList(c, key)
            -- Redis checks the destination only when the source has an element to move.
            local source = typeof(key)
            if not failed and source ~= 'none' then
              if source == 'list' then
                needList(c, cmd[3])
              else
                local t = typeof(cmd[3])
                if t ~= 'list' and t ~= 'none' and t ~= 'listornone' then lastRisky = c end
              end
              shrink(key)
              if sim[cmd[3]] == 'none' then sim[cmd[3]] = 'listornone' end
            end
          elseif name == 'GET' then
            needString(c, key, false)
          elseif name == 'INCRBY' then
            needString(c, key, true); sim[key] = 'string'
          elseif name == 'SET' then
            local t = typeof(key)
            local nx, xx = false, false
            for a = 4, #cmd do
              if cmd[a] == 'NX' then nx = true elseif cmd[a] == 'XX' then xx = true end
            end
            if not nx and not xx then sim[key] = 'string'
            elseif t == 'none' then if nx then sim[key] = 'string' end
            elseif t == 'unknown' or t == 'listornone' then sim[key] = 'unknown'
            elseif xx then sim[key] = 'string' end
          elseif name == 'DEL' then
            for a = 2, #cmd do sim[cmd[a]] = 'none' end
          elseif name == 'PEXPIRE' then
            if tonumber(cmd[3]) <= 0 then typeof(key); sim[key] = 'none' end
          end
          if failed then
            -- Certain to fail. With nothing undecidable before it, fail now, having applied
            -- nothing; otherwise run up to it with snapshots, so the first error in order wins.
            if lastRisky == 0 then return redis.error_reply(wrongtype) end
            lastRisky = c
            break
          end
        end
        local snap, order = {}, {}
        local function snapshot(key)
          if snap[key] == nil then
            local dump = redis.call('DUMP', key)
            local ttl = 0
            if dump then
              ttl = redis.call('PTTL', key)
              if ttl < 0 then ttl = 0 end
            end
            snap[key] = {dump, ttl}
            order[#order + 1] = key
          end
        end
        local readonly = {LLEN = true, LRANGE = true, GET = true, PTTL = true}
        local replies, publishes = {}, {}
        for c, cmd in ipairs(cmds) do
          local name = cmd[1]
          if name == 'PUBLISH' then
            publishes[#publishes + 1] = c
          else
            if c < lastRisky and not readonly[name] then
              if name == 'DEL' then
                for a = 2, #cmd do snapshot(cmd[a]) end
              else
                snapshot(cmd[2])
                if name == 'LMOVE' then snapshot(cmd[3]) end
              end
            end
            local r = redis.pcall(unpack(cmd))
            -- Lua numbers are doubles: an INCRBY result is read back as its exact decimal text.
            if name == 'INCRBY' and type(r) == 'number' then r = redis.call('GET', cmd[2]) end
            if type(r) == 'table' and r.err then
              for i = #order, 1, -1 do
                local key = order[i]
                redis.call('DEL', key)
                if snap[key][1] then redis.call('RESTORE', key, snap[key][2], snap[key][1]) end
              end
              return r
            end
            replies[c] = r
          end
        end
        for _, c in ipairs(publishes) do replies[c] = redis.call(unpack(cmds[c])) end
        return replies
        """#
}
