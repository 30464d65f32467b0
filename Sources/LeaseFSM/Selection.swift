extension Array {
    /// The `k` smallest elements in ascending order (by `areInIncreasingOrder`),
    /// in O(n log k): the reaper and the dispatcher take a few hundred out of
    /// up to 100,000 due leases or jobs many times a second.
    func smallest(_ k: Int, by areInIncreasingOrder: (Element, Element) -> Bool) -> [Element] {
        guard k > 0 else { return [] }
        guard count > k else { return sorted(by: areInIncreasingOrder) }
        // A max-heap of the k smallest so far: its root is the largest kept.
        var heap: [Element] = []
        heap.reserveCapacity(k)
        func siftUp(_ i: Int) {
            var child = i
            while child > 0 {
                let parent = (child - 1) / 2
                guard areInIncreasingOrder(heap[parent], heap[child]) else { return }
                heap.swapAt(parent, child)
                child = parent
            }
        }
        func siftDown(_ i: Int) {
            var parent = i
            while true {
                let left = 2 * parent + 1, right = left + 1
                var largest = parent
                if left < heap.count, areInIncreasingOrder(heap[largest], heap[left]) { largest = left }
                if right < heap.count, areInIncreasingOrder(heap[largest], heap[right]) { largest = right }
                guard largest != parent else { return }
                heap.swapAt(parent, largest)
                parent = largest
            }
        }
        for element in self {
            if heap.count < k {
                heap.append(element)
                siftUp(heap.count - 1)
            } else if areInIncreasingOrder(element, heap[0]) {
                heap[0] = element
                siftDown(0)
            }
        }
        return heap.sorted(by: areInIncreasingOrder)
    }
}
