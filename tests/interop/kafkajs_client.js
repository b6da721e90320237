#!/usr/bin/env node
/*
 * kafkajs (pure JavaScript Kafka client) against broker-lite, for broker-lite/tests/interop.rs.
 *
 * kafkajs comes from tests/interop/kafkajs/node_modules (pinned in its package-lock.json,
 * installed by scripts/setup-interop.sh). Default settings: kafkajs negotiates request versions
 * from ApiVersions itself (there is no version pinning to turn off).
 *
 * Steps (--steps, comma-separated), as the Python scripts (common.py):
 *   create   admin.createTopics (--partitions), listTopics, fetchTopicMetadata (partitions,
 *            leaders) and describeCluster (brokers, controller, cluster id);
 *   produce  --count deterministic keyed messages (common.py: key k-<i%1000>, value v-<i>,
 *            headers on i%7==0) with acks=-1 in sends of 1000 (--compression none|gzip,
 *            --idempotent); the partitioner is kafkajs' DefaultPartitioner (Java's murmur2),
 *            wrapped to record where each message went, and every send's RecordMetadata gives
 *            each message's offset;
 *   consume  a consumer group (kafkajs has no assign) subscribed from the beginning reads until
 *            every partition is read up to its high watermark, then verifies as common.verify:
 *            every message exactly once, offsets contiguous from 0 per partition, produce
 *            order per partition, keys/values/headers intact, each key in one partition and,
 *            after a produce step, the partition and offset the producer was told;
 *   txn      a transactional producer commits, aborts, then commits a transaction of
 *            --per-txn records each (record r to partition r % --partitions); a read_committed
 *            group and a read_uncommitted group read the topic back;
 *   admin    describeCluster, describeConfigs, fetchTopicOffsets(ByTimestamp), a group's
 *            offsets (fetchOffsets, setOffsets, resetOffsets) and state (listGroups,
 *            describeGroups), createPartitions, deleteGroups, deleteTopics; on two side topics
 *            deleteTopicRecords (DeleteRecords, KIP-107) and alterConfigs (the legacy,
 *            non-incremental AlterConfigs, KIP-133: replaces the topic's overrides); every
 *            value the broker answered goes to the summary for the Rust test to assert on.
 *
 * Prints one JSON summary line on stdout; exits non-zero with "INTEROP FAILURE: ..." on stderr
 * on any failure. The summary lists the request versions kafkajs sent (from its debug log),
 * every warning or error kafkajs logged and every connection the broker closed.
 * KAFKAJS_INTEROP_TRACE=1 copies kafkajs' whole debug log to stderr.
 */
'use strict'

const path = require('path')

const KAFKAJS_DIR = path.join(__dirname, 'kafkajs', 'node_modules', 'kafkajs')
const SETUP_HINT = 'run scripts/setup-interop.sh'
const KEY_SPACE = 1000
const SEND_BATCH = 1000

function fail(msg) {
  process.stderr.write(`INTEROP FAILURE: ${msg}\n`)
  process.exit(1)
}

let kafkajs
try {
  kafkajs = require(KAFKAJS_DIR)
} catch (e) {
  fail(`kafkajs is not installed in ${KAFKAJS_DIR} (${e.message}); ${SETUP_HINT}`)
}
const { Kafka, logLevel, CompressionTypes, Partitioners, AssignerProtocol, ConfigResourceTypes } =
  kafkajs
const KAFKAJS_VERSION = require(path.join(KAFKAJS_DIR, 'package.json')).version

// --- arguments ---------------------------------------------------------------------------

function parseArgs(argv) {
  const args = {
    bootstrap: null,
    topic: null,
    partitions: 6,
    count: 1000,
    compression: 'none',
    idempotent: false,
    steps: 'create,produce,consume',
    group: null,
    perTxn: 100,
    timeout: 120,
  }
  const names = {
    '--bootstrap': 'bootstrap',
    '--topic': 'topic',
    '--partitions': 'partitions',
    '--count': 'count',
    '--compression': 'compression',
    '--steps': 'steps',
    '--group': 'group',
    '--per-txn': 'perTxn',
    '--timeout': 'timeout',
  }
  const numeric = new Set(['partitions', 'count', 'perTxn', 'timeout'])
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--idempotent') {
      args.idempotent = true
      continue
    }
    const name = names[a]
    if (!name || i + 1 >= argv.length) fail(`bad argument ${a}`)
    const v = argv[++i]
    args[name] = numeric.has(name) ? Number(v) : v
    if (numeric.has(name) && !Number.isFinite(args[name])) fail(`${a} needs a number, got ${v}`)
  }
  if (!args.bootstrap || !args.topic) fail('--bootstrap and --topic are required')
  if (!['none', 'gzip'].includes(args.compression)) {
    fail(`--compression ${args.compression}: kafkajs has only gzip built in`)
  }
  args.steps = args.steps.split(',')
  args.group = args.group || `kjs-group-${args.topic}`
  return args
}

// --- logging: request versions, warnings, broker-closed connections -----------------------

const REQUEST = /^Request (\w+)\(key: (\d+), version: (\d+)\)$/
const requestVersions = {}
const clientWarnings = []
const disconnects = []

// KAFKAJS_INTEROP_TRACE=1 copies kafkajs' whole log to stderr (shown when a test fails).
const TRACE = !!process.env.KAFKAJS_INTEROP_TRACE

const logCreator = () => ({ namespace, level, label, log }) => {
  const { message, timestamp, logger, ...extra } = log
  if (TRACE) {
    const brief = JSON.stringify(extra)
    process.stderr.write(`${timestamp} ${label} [${namespace}] ${message} ${brief.length > 300 ? brief.slice(0, 300) + '...' : brief}\n`)
  }
  if (level === logLevel.DEBUG) {
    const m = REQUEST.exec(message)
    if (m) {
      ;(requestVersions[m[1]] = requestVersions[m[1]] || new Set()).add(Number(m[3]))
    } else if (message === 'Kafka server has closed connection' && disconnects.length < 10) {
      disconnects.push(`${namespace}: ${extra.broker || ''}`)
    }
    return
  }
  if (level <= logLevel.WARN && clientWarnings.length < 20) {
    clientWarnings.push(`${label} [${namespace}] ${message} ${JSON.stringify(extra)}`)
  }
}

function client(args, clientId) {
  return new Kafka({
    clientId,
    brokers: [args.bootstrap],
    logLevel: logLevel.DEBUG,
    logCreator,
  })
}

// --- deterministic messages (common.py) ---------------------------------------------------

function expectedMessage(i) {
  const key = `k-${i % KEY_SPACE}`
  const value = `v-${i}`
  const headers = i % 7 === 0 ? [['idx', String(i)], ['src', 'interop'], ['empty', '']] : []
  return { key, value, headers }
}

/** kafkajs' headers object as a list of [name, string] pairs (arrays for repeated names). */
function headerPairs(headers) {
  const out = []
  for (const [k, v] of Object.entries(headers || {})) {
    for (const one of Array.isArray(v) ? v : [v]) out.push([k, one == null ? '' : one.toString()])
  }
  return out
}

class Timer {
  constructor() {
    this.t0 = process.hrtime.bigint()
  }
  secs() {
    return Math.round(Number(process.hrtime.bigint() - this.t0) / 1e6) / 1e3
  }
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** `promise`, or a rejection naming `what()` after `secs` seconds. */
function withTimeout(promise, secs, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what()} timed out after ${secs}s`)), secs * 1000)
    }),
  ]).finally(() => clearTimeout(timer))
}

function byPartition(list) {
  const out = {}
  for (const { partition, ...rest } of list) out[String(partition)] = rest
  return out
}

// --- create ------------------------------------------------------------------------------

async function create(args, admin) {
  const t = new Timer()
  const created = await admin.createTopics({
    topics: [{ topic: args.topic, numPartitions: args.partitions }],
    waitForLeaders: true,
    timeout: 30000,
  })
  if (created !== true) fail(`createTopics(${args.topic}) returned ${created}`)
  const topics = await admin.listTopics()
  if (!topics.includes(args.topic)) fail(`listTopics() does not list ${args.topic}: ${topics}`)
  const md = await admin.fetchTopicMetadata({ topics: [args.topic] })
  const parts = md.topics[0].partitions.slice().sort((a, b) => a.partitionId - b.partitionId)
  const ids = parts.map(p => p.partitionId)
  if (ids.join() !== [...Array(args.partitions).keys()].join()) {
    fail(`expected partitions 0..${args.partitions - 1}, got ${ids}`)
  }
  const cluster = await admin.describeCluster()
  const brokers = {}
  for (const b of cluster.brokers) brokers[String(b.nodeId)] = `${b.host}:${b.port}`
  for (const p of parts) {
    if (p.partitionErrorCode !== 0 || !(String(p.leader) in brokers)) {
      fail(`partition ${p.partitionId}: leader ${p.leader} error ${p.partitionErrorCode}`)
    }
  }
  return {
    partitions: parts.length,
    leaders: [...new Set(parts.map(p => p.leader))].sort(),
    replicas: [...new Set(parts.map(p => p.replicas.join()))],
    isr: [...new Set(parts.map(p => p.isr.join()))],
    brokers,
    controller_id: cluster.controller,
    cluster_id: cluster.clusterId,
    seconds: t.secs(),
  }
}

// --- produce -----------------------------------------------------------------------------

async function produce(args, kafka) {
  // Records which partition kafkajs' default partitioner picked for each message.
  const chosen = new Map()
  const recordingPartitioner = () => {
    const inner = Partitioners.DefaultPartitioner()
    return input => {
      const p = inner(input)
      chosen.set(input.message.value, p)
      return p
    }
  }
  const producer = kafka.producer({
    createPartitioner: recordingPartitioner,
    idempotent: args.idempotent,
    maxInFlightRequests: args.idempotent ? 1 : undefined,
  })
  await producer.connect()
  const compression = args.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None
  const produced = new Array(args.count) // i -> [partition, offset]
  let errors = 0
  let sends = 0
  const t = new Timer()
  for (let start = 0; start < args.count; start += SEND_BATCH) {
    const end = Math.min(args.count, start + SEND_BATCH)
    const messages = []
    for (let i = start; i < end; i++) {
      const { key, value, headers } = expectedMessage(i)
      const m = { key, value }
      if (headers.length) m.headers = Object.fromEntries(headers)
      messages.push(m)
    }
    chosen.clear()
    const metadata = await producer.send({ topic: args.topic, messages, acks: -1, compression })
    sends++
    const base = {}
    for (const r of metadata) {
      if (r.topicName !== args.topic || r.errorCode !== 0) {
        errors++
        continue
      }
      base[r.partition] = BigInt(r.baseOffset)
    }
    // kafkajs sends one batch per partition, messages in the order given.
    const next = {}
    for (let i = start; i < end; i++) {
      const p = chosen.get(`v-${i}`)
      if (p === undefined || base[p] === undefined) fail(`message ${i}: no partition / offset`)
      const n = next[p] || 0n
      next[p] = n + 1n
      produced[i] = [p, Number(base[p] + n)]
    }
  }
  const secs = t.secs()
  await producer.disconnect()
  if (errors) fail(`produce: ${errors} partition errors`)
  return [
    {
      count: args.count,
      errors,
      sends,
      seconds: secs,
      compression: args.compression,
      idempotent: args.idempotent,
      msgs_per_sec: secs ? Math.round(args.count / secs) : null,
    },
    produced,
  ]
}

// --- consume -----------------------------------------------------------------------------

/**
 * Runs a consumer group member on `topic` until, on every partition, it has seen the record
 * just before `until[p]` (a high watermark or, for read_committed, the last record offset + 1).
 * Returns every record as {partition, offset, key, value, headers}.
 */
async function consumeGroup(args, kafka, { groupId, topic, until, readUncommitted, fromBeginning }) {
  const consumer = kafka.consumer({ groupId, readUncommitted: !!readUncommitted, maxWaitTimeInMs: 500 })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: fromBeginning !== false })
  const records = []
  const last = {}
  const done = () =>
    Object.entries(until).every(([p, end]) => end <= 0 || (last[p] !== undefined && last[p] >= end - 1))
  await withTimeout(
    new Promise((resolve, reject) => {
      if (done()) resolve()
      consumer
        .run({
          eachBatch: async ({ batch }) => {
            for (const m of batch.messages) {
              const offset = Number(m.offset)
              records.push({
                partition: batch.partition,
                offset,
                key: m.key == null ? null : m.key.toString(),
                value: m.value == null ? null : m.value.toString(),
                headers: headerPairs(m.headers),
              })
              last[batch.partition] = offset
            }
            // The batch may end with control records: kafkajs reports the next offset.
            const lastOffset = Number(batch.lastOffset())
            if (lastOffset >= 0) last[batch.partition] = Math.max(last[batch.partition] ?? -1, lastOffset)
            if (done()) resolve()
          },
        })
        .catch(reject)
    }),
    args.timeout,
    () => `consume of ${topic} by ${groupId} (${records.length} records, last offsets ${JSON.stringify(last)}, until ${JSON.stringify(until)})`
  )
  return { consumer, records }
}

async function highWatermarks(admin, topic) {
  const offsets = await admin.fetchTopicOffsets(topic)
  const high = {}
  const low = {}
  for (const o of offsets) {
    high[String(o.partition)] = Number(o.high)
    low[String(o.partition)] = Number(o.low)
  }
  return { high, low }
}

/** common.verify, for kafkajs' records. */
function verify(records, count, partitions, produced) {
  const problems = []
  const problem = msg => {
    if (problems.length < 20) problems.push(msg)
  }
  const seen = new Array(count).fill(false)
  const per = {}
  for (const r of records) (per[r.partition] = per[r.partition] || []).push(r)
  const keyPartition = new Map()
  for (const p of Object.keys(per).map(Number).sort((a, b) => a - b)) {
    if (p < 0 || p >= partitions) problem(`record in unexpected partition ${p}`)
    let lastI = -1
    per[p].forEach((r, n) => {
      if (r.offset !== n) problem(`partition ${p}: record #${n} has offset ${r.offset} (not contiguous from 0)`)
      const i = r.value && r.value.startsWith('v-') ? Number(r.value.slice(2)) : NaN
      if (!Number.isInteger(i) || i < 0 || i >= count) {
        problem(`partition ${p} offset ${r.offset}: unexpected value ${JSON.stringify(r.value)}`)
        return
      }
      if (seen[i]) problem(`message ${i} received twice (partition ${p} offset ${r.offset})`)
      seen[i] = true
      if (i <= lastI) problem(`partition ${p} offset ${r.offset}: message ${i} after ${lastI} (not in produce order)`)
      lastI = i
      const e = expectedMessage(i)
      if (r.key !== e.key) problem(`message ${i}: key ${r.key}, expected ${e.key}`)
      if (JSON.stringify(r.headers) !== JSON.stringify(e.headers)) {
        problem(`message ${i}: headers ${JSON.stringify(r.headers)}, expected ${JSON.stringify(e.headers)}`)
      }
      if (!keyPartition.has(r.key)) keyPartition.set(r.key, p)
      if (keyPartition.get(r.key) !== p) problem(`key ${r.key} in partitions ${keyPartition.get(r.key)} and ${p}`)
      if (produced && (produced[i][0] !== p || produced[i][1] !== r.offset)) {
        problem(`message ${i}: producer was told partition ${produced[i][0]} offset ${produced[i][1]}, consumed from ${p} at ${r.offset}`)
      }
    })
  }
  const missing = seen.filter(s => !s).length
  if (missing) {
    const first = []
    for (let i = 0; i < count && first.length < 10; i++) if (!seen[i]) first.push(i)
    problem(`${missing} messages never arrived (first: ${first})`)
  }
  if (problems.length) fail(`verification failed:\n  ${problems.join('\n  ')}`)
  const perPartition = {}
  for (const p of Object.keys(per)) perPartition[p] = per[p].length
  let withHeaders = 0
  for (let i = 0; i < count; i++) if (i % 7 === 0) withHeaders++
  return {
    consumed: records.length,
    per_partition: perPartition,
    distinct_keys: keyPartition.size,
    with_headers: withHeaders,
  }
}

async function consume(args, kafka, admin, produced) {
  const t = new Timer()
  const { high, low } = await highWatermarks(admin, args.topic)
  for (const [p, lo] of Object.entries(low)) if (lo !== 0) fail(`partition ${p}: low watermark ${lo}`)
  const total = Object.values(high).reduce((a, b) => a + b, 0)
  if (total !== args.count) fail(`high watermarks ${JSON.stringify(high)} sum to ${total}, expected ${args.count}`)
  const { consumer, records } = await consumeGroup(args, kafka, {
    groupId: args.group,
    topic: args.topic,
    until: high,
  })
  const secs = t.secs()
  await consumer.disconnect()
  const result = verify(records, args.count, args.partitions, produced)
  // Nothing beyond the high watermarks read before (exactly once, nothing appended since).
  const after = await highWatermarks(admin, args.topic)
  if (JSON.stringify(after.high) !== JSON.stringify(high)) {
    fail(`high watermarks moved from ${JSON.stringify(high)} to ${JSON.stringify(after.high)}`)
  }
  return Object.assign(result, {
    seconds: secs,
    high_watermarks: high,
    group: args.group,
    msgs_per_sec: secs ? Math.round(records.length / secs) : null,
  })
}

// --- transactions ------------------------------------------------------------------------

async function txn(args, kafka, admin) {
  if (args.perTxn < args.partitions) fail('--per-txn must be >= --partitions (every partition in every transaction)')
  const producer = kafka.producer({
    transactionalId: `kjs-txn-${args.topic}`,
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: true,
    maxInFlightRequests: 1,
  })
  await producer.connect()
  const outcome = { committed: [], aborted: [] }
  const plan = ['commit', 'abort', 'commit']
  for (let t = 0; t < plan.length; t++) {
    const tx = await producer.transaction()
    const messages = []
    for (let r = 0; r < args.perTxn; r++) {
      messages.push({ key: `k-${r}`, value: `t${t}-r${r}`, partition: r % args.partitions })
    }
    // send() waits for the Produce responses: the records are in the log before EndTxn.
    const md = await tx.send({ topic: args.topic, messages, acks: -1 })
    if (md.some(r => r.errorCode !== 0)) fail(`transaction ${t}: produce errors ${JSON.stringify(md)}`)
    if (plan[t] === 'commit') {
      await tx.commit()
      outcome.committed.push(...messages.map(m => m.value))
    } else {
      await tx.abort()
      outcome.aborted.push(...messages.map(m => m.value))
    }
  }
  await producer.disconnect()

  const { high } = await highWatermarks(admin, args.topic)
  const read = async readUncommitted => {
    // Read up to the last offset holding a record: the high watermark minus the final
    // commit marker (every partition got records in every transaction).
    const until = {}
    for (const [p, h] of Object.entries(high)) until[p] = h - 1
    const { consumer, records } = await consumeGroup(args, kafka, {
      groupId: `${args.group}-${readUncommitted ? 'uncommitted' : 'committed'}`,
      topic: args.topic,
      until,
      readUncommitted,
    })
    await consumer.disconnect()
    const values = records.map(r => r.value)
    const set = new Set(values)
    const perPartition = {}
    for (const r of records) perPartition[r.partition] = (perPartition[r.partition] || 0) + 1
    // Offsets strictly increase per partition (control records are skipped, never returned).
    const lastOff = {}
    for (const r of records) {
      if (lastOff[r.partition] !== undefined && r.offset <= lastOff[r.partition]) {
        fail(`partition ${r.partition}: offset ${r.offset} after ${lastOff[r.partition]}`)
      }
      lastOff[r.partition] = r.offset
    }
    return {
      records: records.length,
      distinct: set.size,
      committed_seen: outcome.committed.filter(v => set.has(v)).length,
      aborted_seen: outcome.aborted.filter(v => set.has(v)).length,
      per_partition: perPartition,
    }
  }
  return {
    transactions: plan,
    committed: outcome.committed.length,
    aborted: outcome.aborted.length,
    high_watermarks: high,
    read_committed: await read(false),
    read_uncommitted: await read(true),
  }
}

// --- admin -------------------------------------------------------------------------------

async function fetchGroupOffsets(admin, groupId, topic) {
  const res = await admin.fetchOffsets({ groupId, topics: [topic] })
  const out = {}
  for (const p of res[0].partitions) out[String(p.partition)] = Number(p.offset)
  return out
}

async function describeGroup(admin, groupId) {
  const { groups } = await admin.describeGroups([groupId])
  if (groups.length !== 1) fail(`describeGroups(${groupId}) returned ${groups.length} groups`)
  const g = groups[0]
  return {
    error_code: g.errorCode,
    state: g.state,
    protocol_type: g.protocolType,
    protocol: g.protocol,
    members: g.members.map(m => {
      const a = m.memberAssignment && m.memberAssignment.length
        ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment)
        : null
      return {
        client_id: m.clientId,
        has_member_id: !!m.memberId,
        assignment: a ? a.assignment : null,
      }
    }),
  }
}

async function listGroupIds(admin) {
  const { groups } = await admin.listGroups()
  return groups
}

/** fetchTopicOffsets as {partition: {low, high}}. */
async function lowHigh(admin, topic) {
  return byPartition(
    (await admin.fetchTopicOffsets(topic)).map(o => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) }))
  )
}

/**
 * kafkajs' `error`, for the summary: its name, plus its protocol error type (KafkaJSProtocolError),
 * per-partition error types (KafkaJSDeleteTopicRecordsError) and the error it wraps (`cause`:
 * kafkajs' retrier wraps a non-retriable error into a KafkaJSNonRetriableError).
 */
function describeError(e) {
  const out = { error: e.name }
  if (e.type) out.type = e.type
  if (e.partitions) {
    out.partitions = e.partitions.map(p => ({
      partition: p.partition,
      offset: String(p.offset),
      error: p.error ? p.error.type || p.error.name : null,
    }))
  }
  if (e.cause && e.cause !== e) out.cause = describeError(e.cause)
  return out
}

/**
 * `action()`'s outcome ({error: null} or describeError) and what kafkajs logged meanwhile (an
 * error response is logged at error level; moved from client_warnings to the summary).
 */
async function expectFailure(action) {
  const logged = clientWarnings.length
  let outcome = { error: null }
  try {
    await action()
  } catch (e) {
    outcome = describeError(e)
  }
  outcome.log = clientWarnings.splice(logged)
  return outcome
}

/**
 * admin.deleteTopicRecords (DeleteRecords) on `<topic>-records` (2 partitions, 100 records in
 * partition 0, 50 in partition 1): records before offset 40 of partition 0 are deleted, then
 * fetchTopicOffsets shows low 40 and a new group subscribed from the beginning starts reading
 * partition 0 at offset 40; deleting before an earlier offset keeps the low watermark (kafkajs
 * warns first); offset -1 deletes partition 1 up to its high watermark; an offset beyond the
 * high watermark fails with OFFSET_OUT_OF_RANGE.
 */
async function deleteRecordsScenario(args, kafka, admin) {
  const topic = `${args.topic}-records`
  const out = { topic }
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true })
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  const messages = []
  for (let i = 0; i < 100; i++) messages.push({ key: `k-${i}`, value: `v-${i}`, partition: 0 })
  for (let i = 0; i < 50; i++) messages.push({ key: `k-${i}`, value: `w-${i}`, partition: 1 })
  await producer.send({ topic, messages, acks: -1 })
  await producer.disconnect()
  out.before = await lowHigh(admin, topic)

  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '40' }] })
  out.after_delete = await lowHigh(admin, topic)
  const read = await consumeGroup(args, kafka, {
    groupId: `${args.group}-records`,
    topic,
    until: { 0: 100, 1: 50 },
  })
  await read.consumer.disconnect()
  out.read = summarizeRead(read.records)
  out.read_first_values = {}
  for (const r of read.records) {
    const p = String(r.partition)
    if (out.read_first_values[p] === undefined) out.read_first_values[p] = r.value
  }

  // Before the low watermark: kafkajs logs a warning and sends it; nothing moves back.
  const logged = clientWarnings.length
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '10' }] })
  out.backwards_log = clientWarnings.splice(logged)
  out.after_backwards = await lowHigh(admin, topic)
  // -1: up to the high watermark.
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 1, offset: '-1' }] })
  out.after_all = await lowHigh(admin, topic)
  out.out_of_range = await expectFailure(() =>
    admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '500' }] })
  )
  out.after_out_of_range = await lowHigh(admin, topic)
  return out
}

/**
 * admin.alterConfigs (the legacy AlterConfigs) on `<topic>-configs`, created with
 * retention.ms, max.message.bytes and cleanup.policy overrides: altering retention.ms alone
 * replaces the whole set (the two not listed revert to their defaults); validateOnly changes
 * nothing; an invalid value fails with INVALID_CONFIG and changes nothing.
 */
async function alterConfigsScenario(args, admin) {
  const topic = `${args.topic}-configs`
  const out = { topic }
  await admin.createTopics({
    topics: [
      {
        topic,
        numPartitions: 1,
        configEntries: [
          { name: 'retention.ms', value: '3600000' },
          { name: 'max.message.bytes', value: '5000' },
          { name: 'cleanup.policy', value: 'compact' },
        ],
      },
    ],
    waitForLeaders: true,
  })
  const describe = async () => {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: topic,
          configNames: ['retention.ms', 'max.message.bytes', 'cleanup.policy'],
        },
      ],
    })
    const entries = {}
    for (const e of resources[0].configEntries) {
      entries[e.configName] = { value: e.configValue, is_default: e.isDefault, source: e.configSource }
    }
    return entries
  }
  const alter = (configEntries, validateOnly) =>
    admin.alterConfigs({
      validateOnly: !!validateOnly,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries }],
    })
  out.created = await describe()
  const altered = await alter([{ name: 'retention.ms', value: '7200000' }])
  out.altered = altered.resources.map(r => ({
    error_code: r.errorCode,
    resource_type: r.resourceType,
    resource_name: r.resourceName,
  }))
  out.after_alter = await describe()
  await alter([{ name: 'retention.ms', value: '5' }], true)
  out.after_validate_only = await describe()
  out.invalid = await expectFailure(() => alter([{ name: 'retention.ms', value: 'soon' }]))
  out.after_invalid = await describe()
  return out
}

async function adminScenario(args, kafka, admin) {
  const topic = args.topic
  const group = args.group
  const out = { timings: {} }
  const timer = new Timer()
  const mark = name => {
    out.timings[name] = timer.secs()
  }
  const perPartition = 200 // records per partition, half at t0, half at t1
  const created = await admin.createTopics({
    topics: [
      {
        topic,
        numPartitions: args.partitions,
        configEntries: [
          { name: 'retention.ms', value: '3600000' },
          { name: 'cleanup.policy', value: 'delete' },
        ],
      },
    ],
    waitForLeaders: true,
  })
  out.created = created
  // Creating it again: kafkajs reports TOPIC_ALREADY_EXISTS as `false`, and logs the error
  // response (moved from client_warnings to the summary, for the test to check).
  const logged = clientWarnings.length
  out.created_again = await admin.createTopics({ topics: [{ topic, numPartitions: args.partitions }] })
  out.created_again_log = clientWarnings.splice(logged)

  const cluster = await admin.describeCluster()
  out.cluster = {
    brokers: cluster.brokers.map(b => ({ node_id: b.nodeId, address: `${b.host}:${b.port}` })),
    controller: cluster.controller,
    cluster_id: cluster.clusterId,
  }

  const cfg = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [
      {
        type: ConfigResourceTypes.TOPIC,
        name: topic,
        configNames: ['retention.ms', 'cleanup.policy', 'max.message.bytes'],
      },
    ],
  })
  const res = cfg.resources[0]
  out.configs = { error_code: res.errorCode, resource_name: res.resourceName, entries: {} }
  for (const e of res.configEntries) {
    out.configs.entries[e.configName] = {
      value: e.configValue,
      is_default: e.isDefault,
      read_only: e.readOnly,
      sensitive: e.isSensitive,
    }
  }

  out.delete_records = await deleteRecordsScenario(args, kafka, admin)
  mark('delete_records')
  out.alter_configs = await alterConfigsScenario(args, admin)
  mark('alter_configs')

  // Records with explicit partitions and timestamps: per partition, 100 at t0 then 100 at t1.
  const now = Date.now()
  const t0 = now - 120000
  const t1 = now - 60000
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  let i = 0
  for (const ts of [t0, t1]) {
    const messages = []
    for (let p = 0; p < args.partitions; p++) {
      for (let n = 0; n < perPartition / 2; n++) {
        messages.push({ key: `k-${i % KEY_SPACE}`, value: `v-${i}`, partition: p, timestamp: String(ts) })
        i++
      }
    }
    await producer.send({ topic, messages, acks: -1 })
  }
  await producer.disconnect()
  const total = i
  mark('produced')

  out.topic_offsets = byPartition(
    (await admin.fetchTopicOffsets(topic)).map(o => ({
      partition: o.partition,
      offset: Number(o.offset),
      high: Number(o.high),
      low: Number(o.low),
    }))
  )
  const byTs = async ts =>
    Object.fromEntries(
      (await admin.fetchTopicOffsetsByTimestamp(topic, ts)).map(o => [String(o.partition), Number(o.offset)])
    )
  out.offsets_by_timestamp = {
    before_t0: await byTs(t0 - 1000),
    at_t0: await byTs(t0),
    at_t1: await byTs(t1),
    between: await byTs(t0 + 1),
    // No record that late: Kafka answers offset -1, which kafkajs replaces by the high watermark.
    after_t1: await byTs(t1 + 1),
  }

  // A group member reads everything; the group is described while it runs.
  const main = await consumeGroup(args, kafka, {
    groupId: group,
    topic,
    until: Object.fromEntries(Object.keys(out.topic_offsets).map(p => [p, perPartition])),
  })
  out.first_read = { records: main.records.length, distinct: new Set(main.records.map(r => r.value)).size }
  // Commit the position (the next offset to read) explicitly: auto-commit runs after eachBatch
  // returns, racing with this function.
  await main.consumer.commitOffsets(
    Object.keys(out.topic_offsets).map(p => ({ topic, partition: Number(p), offset: String(perPartition) }))
  )
  out.running = await describeGroup(admin, group)
  out.listed_running = (await listGroupIds(admin)).filter(g => g.groupId === group)
  // A second member joins: the group rebalances (kafkajs logs "The group is rebalancing" at
  // warn level on the first member; moved to the summary) and splits the partitions.
  const logged2 = clientWarnings.length
  const second = kafka.consumer({ groupId: group, maxWaitTimeInMs: 500 })
  await second.connect()
  await second.subscribe({ topics: [topic] })
  await second.run({ eachBatch: async () => {} })
  let two = null
  for (const deadline = Date.now() + args.timeout * 1000; Date.now() < deadline; await sleep(200)) {
    two = await describeGroup(admin, group)
    if (two.state === 'Stable' && two.members.length === 2 && two.members.every(m => m.assignment)) break
  }
  out.running_two = two
  out.rebalance_log = clientWarnings.splice(logged2)
  try {
    await admin.deleteGroups([group])
    out.delete_running = { error: null }
  } catch (e) {
    out.delete_running = {
      error: e.name,
      groups: (e.groups || []).map(g => ({ group_id: g.groupId, error_code: g.errorCode })),
    }
  }
  await Promise.all([main.consumer.disconnect(), second.disconnect()])
  out.rebalance_log.push(...clientWarnings.splice(logged2))
  mark('first_read')
  out.stopped = await describeGroup(admin, group)
  out.committed = await fetchGroupOffsets(admin, group, topic)

  // setOffsets on the stopped group, then a member resumes from there (not from the beginning).
  const seekTo = { 0: 50, 1: 120, 2: 199 }
  await admin.setOffsets({
    groupId: group,
    topic,
    partitions: Object.entries(seekTo).map(([p, o]) => ({ partition: Number(p), offset: String(o) })),
  })
  out.after_set = await fetchGroupOffsets(admin, group, topic)
  mark('set_offsets')
  const resumed = await consumeGroup(args, kafka, {
    groupId: group,
    topic,
    until: Object.fromEntries(Object.keys(seekTo).map(p => [p, perPartition])),
    fromBeginning: false,
  })
  await resumed.consumer.disconnect()
  out.resumed = summarizeRead(resumed.records)
  mark('resumed')
  out.committed_after_resume = await fetchGroupOffsets(admin, group, topic)

  // resetOffsets to the earliest: kafkajs commits the logical offset -2 (EARLIEST), which
  // the broker stores and fetchOffsets returns as is (as Kafka does, kafkajs issue #192). A
  // member treats a negative committed offset as none and starts where its subscription says:
  // subscribed from the beginning, it reads from 0 (it would resume at 200 without the reset).
  // (fetchOffsets' resolveOffsets would commit the resolved offsets through another setOffsets
  // round, so the read below would not show the reset itself.)
  await admin.resetOffsets({ groupId: group, topic, earliest: true })
  out.after_reset = await fetchGroupOffsets(admin, group, topic)
  mark('reset_offsets')
  const again = await consumeGroup(args, kafka, {
    groupId: group,
    topic,
    until: Object.fromEntries(Object.keys(seekTo).map(p => [p, perPartition])),
  })
  await again.consumer.disconnect()
  out.after_reset_read = summarizeRead(again.records)
  mark('after_reset_read')

  // createPartitions: 3 -> 5.
  await admin.createPartitions({
    topicPartitions: [{ topic, count: args.partitions + 2 }],
  })
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  out.partitions_after = md.topics[0].partitions.length
  out.topic_offsets_after = byPartition(
    (await admin.fetchTopicOffsets(topic)).map(o => ({
      partition: o.partition,
      high: Number(o.high),
      low: Number(o.low),
    }))
  )

  // deleteGroups on the empty group, then deleteTopics.
  out.delete_group = (await admin.deleteGroups([group])).map(g => ({ group_id: g.groupId, error_code: g.errorCode }))
  out.listed_after_delete = (await listGroupIds(admin)).filter(g => g.groupId === group)
  out.offsets_after_delete = await fetchGroupOffsets(admin, group, topic)
  await admin.deleteTopics({
    topics: [topic, out.delete_records.topic, out.alter_configs.topic],
    timeout: 30000,
  })
  out.listed_topic_after_delete = (await admin.listTopics()).includes(topic)
  out.produced = total
  mark('done')
  return out
}

function summarizeRead(records) {
  const first = {}
  const count = {}
  let ok = true
  for (const r of records) {
    const p = String(r.partition)
    if (first[p] === undefined) first[p] = r.offset
    else if (r.offset !== first[p] + count[p]) ok = false
    count[p] = (count[p] || 0) + 1
  }
  return { records: records.length, first_offset: first, per_partition: count, contiguous: ok }
}

// --- main --------------------------------------------------------------------------------

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const kafka = client(args, 'kafkajs-interop')
  const admin = kafka.admin()
  await admin.connect()
  const summary = { client: 'kafkajs', version: KAFKAJS_VERSION, node: process.version, topic: args.topic }
  let produced = null
  if (args.steps.includes('create')) summary.create = await create(args, admin)
  if (args.steps.includes('produce')) [summary.produce, produced] = await produce(args, kafka)
  if (args.steps.includes('consume')) summary.consume = await consume(args, kafka, admin, produced)
  if (args.steps.includes('txn')) summary.txn = await txn(args, kafka, admin)
  if (args.steps.includes('admin')) summary.admin = await adminScenario(args, kafka, admin)
  await admin.disconnect()
  summary.request_versions = Object.fromEntries(
    Object.entries(requestVersions)
      .sort()
      .map(([k, v]) => [k, [...v].sort((a, b) => a - b)])
  )
  summary.client_warnings = clientWarnings
  summary.disconnects = disconnects
  process.stdout.write(JSON.stringify(summary) + '\n')
}

main().then(
  () => process.exit(0),
  e => fail(`${e && e.stack ? e.stack : e}${e && e.groups ? ' ' + JSON.stringify(e.groups) : ''}`)
)
