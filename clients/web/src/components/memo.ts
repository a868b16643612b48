// `memo` without preact/compat: a component that re-renders only when a prop changes identity.
// The board passes objects that keep their identity while unchanged (src/store/boardStore.ts),
// so this is what keeps a remote move from re-rendering every card. A switch of the page's
// language (src/ui/i18n.ts) re-renders it too, since its texts change with no prop.

import { Component, h, type ComponentType, type FunctionComponent } from "preact";
import { currentLanguage } from "../ui/i18n";

export function shallowEqual(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.is(a[key], b[key]));
}

export function memo<P extends object>(render: FunctionComponent<P>): ComponentType<P> {
  class Memo extends Component<P> {
    private language = currentLanguage();
    override shouldComponentUpdate(next: P): boolean {
      return this.language !== currentLanguage() || !shallowEqual(this.props, next as Record<string, unknown>);
    }
    override render(props: P) {
      this.language = currentLanguage();
      return h(render, props);
    }
  }
  (Memo as unknown as { displayName: string }).displayName = `memo(${render.displayName ?? render.name})`;
  return Memo;
}
