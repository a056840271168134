// The WebSocket connection: one socket to /ws, reconnected with a growing delay (0.5 s up to 5 s)
// whenever it closes, e.g. when the server restarts. On every (re)open the app's `onopen` callback
// runs, which authenticates and subscribes again and refreshes what the socket may have missed; the
// book channel then starts over with a fresh snapshot.

export class Stream {
  /** `handlers`: {onopen(), onmessage(frame), onstate("connecting" | "live" | "reconnecting")}. */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.socket = null;
    this.delay = 500;
    this.stopped = false;
    this.timer = null;
    this.connections = 0;
  }

  start() {
    this.stopped = false;
    this._connect();
  }

  /** Close this socket and open a new one at once (e.g. after signing out: a fresh, anonymous socket). */
  restart() {
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close();
      this.socket = null;
    }
    clearTimeout(this.timer);
    this._connect();
  }

  /** Send a frame if the socket is open; otherwise it is dropped (onopen resends what is needed). */
  send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  get live() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  _connect() {
    this.handlers.onstate(this.connections === 0 ? "connecting" : "reconnecting");
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.delay = 500;
      this.connections += 1;
      this.handlers.onstate("live");
      this.handlers.onopen();
    };
    socket.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      this.handlers.onmessage(frame);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      this.handlers.onstate("reconnecting");
      this.timer = setTimeout(() => this._connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 5000);
    };
    socket.onerror = () => {
      // onclose follows and schedules the reconnection
    };
  }
}
