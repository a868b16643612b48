// Performance marks that the browser benchmark (tests/browser-bench) reads with
// `performance.getEntriesByName`. Few and fixed: one set per page load, so the browser's timeline
// buffer does not grow with the board's life.
//
// - `funnel:board-committed`: the first commit of the board page that shows every column with
//   its count and sum from the server's whole state (the page says `connected`, "Live"). Marked
//   once the render pass of that commit is done: the columns follow the store on their own
//   (components/BoardColumns.tsx) and render in the same pass, just after the page commits.
// - `funnel:board-painted`: the first task after the frame that painted that commit (a
//   `requestAnimationFrame` callback runs just before the frame's style, layout and paint; a task
//   posted from it runs after them).
// - `funnel:first-board-paint`: a measure from the navigation's start to `funnel:board-painted`.

export const BOARD_COMMITTED = "funnel:board-committed";
export const BOARD_PAINTED = "funnel:board-painted";
export const FIRST_BOARD_PAINT = "funnel:first-board-paint";

let marked = false;

/** Marks the first board commit and, after its frame, its paint. Once per page load. */
export function markFirstBoardPaint(): void {
  if (marked || typeof performance === "undefined" || typeof performance.mark !== "function") return;
  marked = true;
  // Called from the page's layout effect, in the middle of the pass: a microtask runs after it.
  queueMicrotask(() => performance.mark(BOARD_COMMITTED));
  requestAnimationFrame(() => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      performance.mark(BOARD_PAINTED);
      performance.measure(FIRST_BOARD_PAINT, { start: 0, end: BOARD_PAINTED });
    };
    channel.port2.postMessage(null);
  });
}
