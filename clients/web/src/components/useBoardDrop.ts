// The board's one drag-and-drop monitor: a card dropped on a card, a column or the won/lost bar
// moves through `BoardActions.moveCard` (which first asks for what the stage requires); a stage
// header dropped beside another column reorders the stages (the initial stage stays first).

import { t } from "../ui/i18n";
import { monitorForElements } from "@atlaskit/pragmatic-drag-and-drop/element/adapter";
import { extractClosestEdge } from "@atlaskit/pragmatic-drag-and-drop-hitbox/closest-edge/extract-closest-edge";
import { useEffect } from "preact/hooks";
import { moveStage } from "../model/write";
import type { Target } from "../ui/placement";
import type { BoardActions } from "./context";

export function useBoardDrop(actions: BoardActions): void {
  useEffect(() => {
    const dropStage = (moving: string, onto: string, side: "left" | "right") => {
      const stages = actions.snapshot().stages;
      const others = stages.filter((s) => s.id !== moving);
      const index = others.findIndex((s) => s.id === onto);
      if (index === -1) return;
      const after = side === "right" ? others[index] : others[index - 1];
      if (after === undefined) {
        actions.notify(t("board.initialFirst"));
        return;
      }
      const current = stages.findIndex((s) => s.id === moving);
      if (stages[current - 1]?.id === after.id) return;
      if (actions.write(() => moveStage(actions.doc, moving, after.id))) actions.announce(t("board.stageMoved"));
    };

    return monitorForElements({
      canMonitor: ({ source }) =>
        (source.data.type === "card" && actions.can.moveCards) ||
        (source.data.type === "stage" && actions.can.editStages),
      onDragStart: ({ source }) => {
        if (source.data.type === "card") actions.connection.setDragging(String(source.data.cardId));
      },
      onDrop: ({ source, location }) => {
        actions.connection.setDragging(null);
        const targets = location.current.dropTargets;
        if (source.data.type === "card") {
          const card = String(source.data.cardId);
          const inner = targets[0];
          if (inner === undefined) return;
          const stage = String(inner.data.stageId);
          let target: Target;
          if (inner.data.type === "card") {
            const edge = extractClosestEdge(inner.data);
            target = { stage, card: String(inner.data.cardId), edge: edge === "top" ? "top" : "bottom" };
          } else {
            target = { stage, at: "bottom" };
          }
          if (actions.moveCard(card, target)) {
            const name = actions.snapshot().stages.find((s) => s.id === stage)?.name ?? "";
            actions.announce(t("board.movedTo", { stage: name }));
          }
        } else if (source.data.type === "stage") {
          const over = targets.find((t) => t.data.type === "column");
          if (over === undefined) return;
          dropStage(
            String(source.data.stageId),
            String(over.data.stageId),
            extractClosestEdge(over.data) === "left" ? "left" : "right",
          );
        }
      },
    });
  }, [actions]);
}
