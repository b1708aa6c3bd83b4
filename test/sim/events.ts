// collection_update delivery (RpcWebSocketApp.send_event): an event goes to every connection that subscribed to
// its exact name or to "*". ADDED/CHANGED may carry `fields`; any other keyword becomes `extra`.
import type { Conn } from './context.js';
import type { SimObject, SimValue } from './ejson.js';

export type EventType = 'ADDED' | 'CHANGED' | 'REMOVED';

export interface EventPayload {
  id?: SimValue;
  fields?: SimValue;
  extra?: SimObject;
}

export class EventHub {
  private readonly conns = new Set<Conn>();

  attach(conn: Conn): void {
    this.conns.add(conn);
  }
  detach(conn: Conn): void {
    this.conns.delete(conn);
  }

  send(name: string, type: EventType, payload: EventPayload): void {
    const event: SimObject = { msg: type.toLowerCase(), collection: name };
    if (payload.id !== undefined) event.id = payload.id;
    if ((type === 'ADDED' || type === 'CHANGED') && payload.fields !== undefined)
      event.fields = payload.fields;
    if (payload.extra && Object.keys(payload.extra).length) event.extra = payload.extra;
    for (const conn of this.conns) {
      if (!conn.open || !conn.session) continue;
      const names = [...conn.subscriptions.values()];
      if (names.includes(name) || names.includes('*')) conn.sendNotification('collection_update', event);
    }
  }
}
