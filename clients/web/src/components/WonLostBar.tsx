// The bar at the bottom of the board (as in Bitrix24's Kanban): a drop zone for the success
// stage and one for each failure stage. Dropping a card there wins or loses it: the move goes
// through the board's usual path, which first asks for what the stage requires. Shown to those
// who may move cards.

import { dropTargetForElements, monitorForElements } from "@atlaskit/pragmatic-drag-and-drop/element/adapter";
import { combine } from "@atlaskit/pragmatic-drag-and-drop/combine";
import { useEffect, useRef, useState } from "preact/hooks";
import type { Stage } from "../model/board";
import { t } from "../ui/i18n";

function Zone({ stage }: { stage: Stage }) {
  const ref = useRef<HTMLDivElement>(null);
  const [over, setOver] = useState(false);
  useEffect(() => {
    const element = ref.current;
    if (element === null) return;
    return dropTargetForElements({
      element,
      canDrop: ({ source }) => source.data.type === "card",
      getData: () => ({ type: "won-lost", stageId: stage.id }),
      onDragEnter: () => setOver(true),
      onDragLeave: () => setOver(false),
      onDrop: () => setOver(false),
    });
  }, [stage.id]);
  const won = stage.kind === "success";
  return (
    <div
      ref={ref}
      class={`won-lost-zone ${won ? "won-zone" : "lost-zone"}`}
      data-won-lost={stage.id}
      data-stage-kind={stage.kind}
      data-over={over ? "" : undefined}
    >
      <span class="won-lost-name">{stage.name}</span>
    </div>
  );
}

export function WonLostBar({ stages }: { stages: readonly Stage[] }) {
  const [dragging, setDragging] = useState(false);
  useEffect(
    () =>
      combine(
        monitorForElements({
          canMonitor: ({ source }) => source.data.type === "card",
          onDragStart: () => setDragging(true),
          onDrop: () => setDragging(false),
        }),
      ),
    [],
  );
  const finals = stages.filter((s) => s.kind === "success" || s.kind === "failure");
  if (finals.length === 0) return null;
  return (
    <div
      class="won-lost-bar"
      role="group"
      aria-label={t("wonLost.bar")}
      data-won-lost-bar=""
      data-dragging={dragging ? "" : undefined}
      title={t("wonLost.hint")}
    >
      {finals.map((stage) => (
        <Zone key={stage.id} stage={stage} />
      ))}
    </div>
  );
}
