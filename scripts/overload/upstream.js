'use strict';
// The overload experiment's fake upstream: a plain node:http server with a fixed number of
// slots (a worker pool). Each request holds a slot for the current service time; requests
// that find every slot busy wait in a FIFO queue (a real server's accept backlog / worker
// queue), so under overload the latency grows with the queue, as it does in front of a real
// service. Capacity = slots / service time: 10 slots at 50 ms serve 200 req/s, at 125 ms 80.
//
// Run by scripts/overload.js with fork(); env PORT, SLOTS, LATENCY_MS. Control over IPC:
//   parent → child  {type: 'latency', ms}   service time from now on (requests already in a
//                                            slot keep the time they started with)
//   child → parent  {type: 'ready', port}   listening
//                   {type: 'stats', …}      every second: counters since start, busy slots,
//                                            queue length now and its maximum in the second,
//                                            this process's event-loop lag (max, ms) in the second:
//                                            a starved upstream (a busy machine) is slower than
//                                            its service time says
//
// A queued request whose client went away (the gateway cancels an upstream request when its
// own client gives up) is dropped when it reaches the head of the queue, as a server that
// checks the connection before working would; a request already in a slot runs to the end
// (wasted work). This is the generous reading of a real server: it makes the `none` mode look
// as good as it can.

const http = require('node:http');
const { monitorEventLoopDelay } = require('node:perf_hooks');

const port = Number(process.env.PORT || 0);
const slots = Number(process.env.SLOTS || 10);
let latencyMs = Number(process.env.LATENCY_MS || 50);

let busy = 0;
const queue = [];
let head = 0;
const stats = { served: 0, dropped: 0, received: 0, queueMax: 0 };

function queued() {
  return queue.length - head;
}

function start(entry) {
  busy++;
  const ms = latencyMs;
  setTimeout(() => {
    busy--;
    if (!entry.gone) {
      stats.served++;
      entry.res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
      entry.res.end('ok');
    }
    next();
  }, ms);
}

function next() {
  while (busy < slots && queued() > 0) {
    const entry = queue[head];
    queue[head++] = undefined;
    if (head > 4096 && head * 2 > queue.length) {
      queue.splice(0, head);
      head = 0;
    }
    if (entry.gone) {
      stats.dropped++;
      continue;
    }
    start(entry);
  }
}

const server = http.createServer((req, res) => {
  stats.received++;
  const entry = { res, gone: false };
  res.on('close', () => { if (!res.writableFinished) entry.gone = true; });
  req.resume();
  req.on('end', () => {
    if (busy < slots) {
      start(entry);
      return;
    }
    queue.push(entry);
    if (queued() > stats.queueMax) stats.queueMax = queued();
  });
});
server.keepAliveTimeout = 65_000;

process.on('message', (msg) => {
  if (msg && msg.type === 'latency' && Number.isFinite(msg.ms) && msg.ms >= 0) latencyMs = msg.ms;
});
// The parent going away (killed, crashed) ends this process too.
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();

server.listen(port, '127.0.0.1', () => {
  process.send({ type: 'ready', port: server.address().port });
  setInterval(() => {
    if (!process.connected) return;
    const lagMaxMs = Math.round(lag.max / 1e6);
    lag.reset();
    process.send({ type: 'stats', busy, queued: queued(), latencyMs, lagMaxMs, ...stats });
    stats.queueMax = queued();
  }, 1000).unref();
});
