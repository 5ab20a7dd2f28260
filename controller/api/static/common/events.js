// The cabinet's live event stream (WebSocket /api/v1/events): drawers opened and closed, alarms, refrigerator
// readings. Reconnects after a dropped link; stops for good when the session ends (close code 4401).
const SESSION_ENDED = 4401;

export class EventStream {
  /** @param {(event: object) => void} onEvent  @param {(connected: boolean) => void} onLink */
  constructor(onEvent, onLink = () => {}) {
    this.onEvent = onEvent;
    this.onLink = onLink;
    this.socket = null;
    this.token = null;
    this.retry = null;
    this.delay = 500;
  }

  open(token) {
    this.close();
    this.token = token;
    this.connect();
  }

  connect() {
    if (!this.token) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // The token as a subprotocol, never in the URL: URLs end up in logs.
    const socket = new WebSocket(`${scheme}://${location.host}/api/v1/events`, ["adc.bearer", this.token]);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.delay = 500;
      this.onLink(true);
    });
    socket.addEventListener("message", (message) => {
      try {
        this.onEvent(JSON.parse(message.data));
      } catch (error) {
        console.warn("event not understood", error);
      }
    });
    socket.addEventListener("close", (closed) => {
      if (this.socket !== socket) return; // replaced or closed on purpose
      this.socket = null;
      this.onLink(false);
      if (closed.code === SESSION_ENDED || !this.token) return;
      this.retry = setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 8000);
    });
  }

  close() {
    this.token = null;
    clearTimeout(this.retry);
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000, "page closed the stream");
  }
}
