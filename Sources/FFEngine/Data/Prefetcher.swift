import Foundation

/// Produces items 0..<count on a background thread, at most `depth` ahead of the consumer,
/// and hands them out in order. Items are computed by a pure function of their index, so
/// the results do not depend on timing. Dropping the iterator stops the thread.
final class Prefetcher<T> {
    private final class State {
        let cond = NSCondition()
        var ready: [Int: T] = [:]
        var consumed = 0
        var cancelled = false
    }

    private let state = State()
    private let count: Int
    private var next = 0

    init(count: Int, depth: Int, name: String, make: @escaping (Int) -> T) {
        self.count = count
        let state = self.state
        let depth = max(1, depth)
        let thread = Thread {
            for i in 0..<count {
                state.cond.lock()
                while !state.cancelled && i - state.consumed >= depth { state.cond.wait() }
                let stop = state.cancelled
                state.cond.unlock()
                if stop { return }
                let item = make(i)
                state.cond.lock()
                state.ready[i] = item
                state.cond.broadcast()
                state.cond.unlock()
            }
        }
        thread.name = name
        thread.start()
    }

    deinit {
        state.cond.lock()
        state.cancelled = true
        state.ready.removeAll()
        state.cond.broadcast()
        state.cond.unlock()
    }

    func nextItem() -> T? {
        guard next < count else { return nil }
        state.cond.lock()
        while state.ready[next] == nil { state.cond.wait() }
        let item = state.ready.removeValue(forKey: next)
        next += 1
        state.consumed = next
        state.cond.broadcast()
        state.cond.unlock()
        return item
    }
}
